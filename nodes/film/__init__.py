"""Film stage: camera moves over keyframes, clips, transitions and streaming MP4 output."""
