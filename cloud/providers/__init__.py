"""Providers start and close ComfyUI instances behind one interface (:class:`.base.Provider`)."""
