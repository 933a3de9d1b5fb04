"""Embedding intent router: train on labelled utterances, save/load a versioned artefact, predict with confidence.

Pure Python (numpy, scipy, the embedding packages): no Django, no Celery, so the admin's
`train_router` command, the workers and the evaluation CLI all call the same API:

    router = Router.train(examples, embedders="auto", cache="var/router/embeddings.sqlite3")
    router.save("var/router/router.npz")
    router = Router.load("var/router/router.npz")
    router.predict("明天早上八点提醒我开会")  # Prediction(intent, confidence, oos, top)
"""

from .router import OOS, Example, Prediction, Router

__all__ = ["OOS", "Example", "Prediction", "Router"]
