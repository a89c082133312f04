"""Audio stage: speech synthesis engines, text normalisation, and the audio utilities the compositor reuses."""
