"""The pipeline stages, one module each: preprocess, run_skill (with its AI-card streaming), postprocess, deliver."""
