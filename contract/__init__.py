"""Wire contracts every process shares (listener, workers, webapp): the envelope and the pipeline's names."""
