"""Video-model stage: what the pack adds around core's video models (Wan, HuMo, S2V), starting with refusing a
model of another family by the file's name and the storyboard place that named it."""
