"""Intent: a request in plain words becomes a storyboard, through a local or remote language model."""
