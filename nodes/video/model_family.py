"""Which family a loaded diffusion model is, read from what core built for it (its model class and input width),
so a file of another family, renamed or mislabelled, is refused by name before anything samples with it: a
HuMo file given as Wan2.2-S2V would otherwise run and quietly ignore the sound.

Plain functions over core's ``MODEL`` (a ModelPatcher); nothing of ComfyUI is imported.
"""
from __future__ import annotations

#: family id -> the name users know it by
FAMILY_NAMES = {
    "s2v": "Wan2.2-S2V", "humo": "HuMo", "wan_i2v": "Wan image-to-video", "wan_t2v": "Wan text-to-video",
    "wan_ti2v_5b": "Wan2.2 TI2V 5B", "animate": "Wan2.2-Animate", "vace": "Wan VACE", "camera": "Wan Fun Camera",
}
#: the families a pack graph asks a loader for
CHECKED = ("s2v", "humo", "wan_i2v", "wan_t2v")
_BY_CLASS = {"WAN22_S2V": "s2v", "WAN21_HuMo": "humo", "WAN22": "wan_ti2v_5b", "WAN22_Animate": "animate",
             "WAN21_Vace": "vace", "WAN21_Camera": "camera"}
_WAN_I2V_IN_DIM = 36  # an i2v DiT takes the start image's latent and mask beside the noise (16 + 20 channels)


def loaded_family(model) -> str:
    """The family id of a core ``MODEL`` (else its core class name): Wan 2.1/2.2 i2v and t2v share one class and
    differ in input width."""
    base = getattr(model, "model", model)
    name = type(base).__name__
    if name == "WAN21":
        config = getattr(getattr(base, "model_config", None), "unet_config", None) or {}
        return "wan_i2v" if config.get("in_dim") == _WAN_I2V_IN_DIM else "wan_t2v"
    return _BY_CLASS.get(name, name)


def check_family(model, family: str, file: str = "", where: str = ""):
    """``model`` when it is of ``family``; else a ValueError naming the file, where it was named, what it is and
    what to give instead."""
    if family not in CHECKED:
        raise ValueError(f"family must be one of {', '.join(CHECKED)}, not {family!r}")
    found = loaded_family(model)
    if found == family:
        return model
    wanted = FAMILY_NAMES[family]
    what = FAMILY_NAMES.get(found, f"{found} (not a Wan video model)")
    place = f"{where}: " if where else ""
    raise ValueError(f"{place}{file or 'the diffusion model'} is a {what} model, not {wanted}: put the {wanted} "
                     "diffusion model in ComfyUI's models/diffusion_models folder and name it there")
