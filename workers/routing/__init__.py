"""Intent → skill in preprocess: the routers (trained, keyword), the policy, where the active artefact comes from."""
