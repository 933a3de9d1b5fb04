"""Actions on routing data: seed and edit examples, train/activate routers, log and relabel routed turns."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from conf.settings import get_settings
from skills import registry
from skills.language import is_chinese
from skills.routing import embedders as emb
from skills.routing.cache import EmbeddingCache, Progress, fill
from skills.routing.router import Router
from webapp.actions import versions
from webapp.actions.audit import record_audit
from webapp.models.audit import AuditAction
from webapp.models.routing import IntentExample, RoutedTurn, RouterModel
from webapp.models.skills import RemoteSkill

log = logging.getLogger(__name__)


class RoutingError(ValueError):
    """A routing change was refused (unknown intent, nothing to train on...)."""


def language_of(text: str) -> str:
    return "zh" if is_chinese(text) else "en"


def known_intents() -> set[str]:
    """Intents some skill answers: the built-ins' and the remote skills'."""
    intents = set(registry.intent_map())
    for row in RemoteSkill.objects.only("intents"):
        intents.update(row.intents or [])
    return intents


# -- training examples -------------------------------------------------------------------------------

def shipped_examples() -> list[tuple[str, str]]:
    """(intent, text) of every built-in skill's shipped examples."""
    return [
        (intent, text)
        for name in registry.skill_names()
        for intent, texts in registry.skill_class(name).examples.items()
        for text in texts
    ]


def do_seed_intent_examples(actor: str = "system") -> int:
    """Insert the shipped examples that are not in the table yet; returns how many were added.

    Idempotent: an example an admin disabled or deleted-and-re-added keeps its state.
    """
    rows = [
        IntentExample(intent=intent, text=text, language=language_of(text),
                      source=IntentExample.Source.SEED, created_by=actor)
        for intent, text in shipped_examples()
    ]
    with transaction.atomic():
        before = IntentExample.objects.count()
        IntentExample.objects.bulk_create(rows, ignore_conflicts=True)
        added = IntentExample.objects.count() - before
        if added:
            record_audit(actor=actor, action=AuditAction.INTENT_EXAMPLE_SEED, target_type="intent_example",
                         detail={"added": added, "shipped": len(rows)})
    return added


def do_import_intent_examples(actor: str, rows: Iterable[dict[str, Any]]) -> int:
    """Add examples from a file of {"text", "intent"} rows; returns how many were new. Intents that no
    skill answers are kept (the router learns them; routing sends them to the fallback skill)."""
    objs = [
        IntentExample(intent=str(r["intent"]), text=str(r["text"]).strip(), language=language_of(str(r["text"])),
                      source=IntentExample.Source.IMPORT, created_by=actor)
        for r in rows if str(r.get("text") or "").strip() and r.get("intent")
    ]
    with transaction.atomic():
        before = IntentExample.objects.count()
        IntentExample.objects.bulk_create(objs, ignore_conflicts=True, batch_size=2000)
        added = IntentExample.objects.count() - before
        record_audit(actor=actor, action=AuditAction.INTENT_EXAMPLE_IMPORT, target_type="intent_example",
                     detail={"added": added, "rows": len(objs)})
    return added


def do_save_intent_example(
    actor: str, example: IntentExample | None, *, intent: str, text: str, enabled: bool = True,
    source: str = IntentExample.Source.ADMIN,
) -> IntentExample:
    """Add or change one example (admin), audited; the intent must belong to a skill."""
    text = text.strip()
    if not text:
        raise RoutingError("an example needs text")
    if intent not in known_intents():
        raise RoutingError(f"no skill answers intent {intent!r}")
    with transaction.atomic():
        before = None if example is None or example.pk is None else \
            IntentExample.objects.get(pk=example.pk).snapshot()
        row = example or IntentExample(source=source, created_by=actor)
        row.intent, row.text, row.enabled, row.language = intent, text, enabled, language_of(text)
        row.save()
        record_audit(actor=actor, action=AuditAction.INTENT_EXAMPLE_SAVE, target_type="intent_example",
                     target_id=str(row.pk), before=before, after=_audited(row))
    return row


def do_delete_intent_example(actor: str, example: IntentExample) -> None:
    with transaction.atomic():
        record_audit(actor=actor, action=AuditAction.INTENT_EXAMPLE_DELETE, target_type="intent_example",
                     target_id=str(example.pk), before=_audited(example), after=None)
        example.delete()


def _audited(row: IntentExample) -> dict[str, Any]:
    """The audit log is permanent: a relabelled user message appears there without its text."""
    snap = row.snapshot()
    if row.origin_user_id:
        snap["text"] = f"<user text, {len(row.text)} chars>"
    return snap


# -- training and activation ---------------------------------------------------------------------------

def training_rows() -> list[dict[str, str]]:
    return [{"text": text, "intent": intent}
            for intent, text in IntentExample.objects.filter(enabled=True).values_list("intent", "text")]


def embedding_cache_path() -> Path:
    return Path(get_settings().router_dir) / "embeddings.sqlite3"


def do_embed_intent_examples(progress: Progress | None = None) -> int:
    """Embed the enabled examples the training cache lacks, with the models train_router will pick.

    Bulk writes (seed_intents, import_intents) call this, so embedding 15k examples (minutes on two
    cores) happens when they are written and train_router only fits the classifier (seconds). The
    few examples an admin adds one by one are embedded by the next training (milliseconds each).
    Returns how many (text, model) embeddings were computed.
    """
    texts = [r["text"] for r in training_rows()]
    if not texts:
        return 0
    cache = EmbeddingCache(embedding_cache_path())
    try:
        return fill(emb.build(emb.auto_names(texts)), texts, cache, progress)
    finally:
        cache.close()


def do_train_router(actor: str = "system", *, activate: bool = True,
                    rows: Iterable[dict[str, str]] | None = None, progress: Progress | None = None) -> RouterModel:
    """Train on the enabled examples (seeding first when there are none), store the artefact in the
    database and, with `activate`, make it the router every worker swaps to."""
    if rows is None:
        if not IntentExample.objects.exists():
            do_seed_intent_examples(actor)
        rows = training_rows()
    rows = list(rows)
    if len({r["intent"] for r in rows}) < 2:
        raise RoutingError("need examples of at least two intents to train a router")
    started = time.perf_counter()
    router = Router.train(rows, cache=embedding_cache_path(), progress=progress)
    with tempfile.TemporaryDirectory() as tmp:
        data = router.save(Path(tmp) / "router.npz").read_bytes()
    seconds = time.perf_counter() - started
    meta = router.meta
    with transaction.atomic():
        model = RouterModel.objects.create(
            version=router.version, created_by=actor, n_examples=len(rows),
            intents=sorted({r["intent"] for r in rows}), embedders=list(router.embedder_names),
            metrics={"val": meta.get("val_metrics", {}), "n_val": meta.get("n_val", 0),
                     "embed_seconds": meta.get("embed_seconds"), "embedded_texts": meta.get("embedded_texts")},
            train_seconds=round(seconds, 3), artefact=data, size_bytes=len(data),
            activated_at=timezone.now() if activate else None,
        )
        record_audit(actor=actor, action=AuditAction.ROUTER_TRAIN, target_type="router_model", target_id=model.version,
                     after={"n_examples": model.n_examples, "intents": model.intents,
                            "activated": activate, "metrics": model.metrics},
                     detail={"train_seconds": model.train_seconds, "size_bytes": model.size_bytes})
        if activate:
            versions.publish_on_commit(versions.ROUTER, model.version)
    log.info("router %s trained on %d examples in %.1f s", model.version, model.n_examples, seconds)
    return model


def do_activate_router(actor: str, model: RouterModel) -> RouterModel:
    """Make `model` the one workers use (also rolls back to an older version)."""
    with transaction.atomic():
        previous = active_router_version()
        RouterModel.objects.filter(pk=model.pk).update(activated_at=timezone.now())
        record_audit(actor=actor, action=AuditAction.ROUTER_ACTIVATE, target_type="router_model",
                     target_id=model.version, before={"version": previous}, after={"version": model.version})
        versions.publish_on_commit(versions.ROUTER, model.version)
    model.refresh_from_db()
    return model


def active_router_version() -> str | None:
    return (RouterModel.objects.filter(activated_at__isnull=False).order_by("-activated_at")
            .values_list("version", flat=True).first())


def router_version_exists(version: str) -> bool:
    return RouterModel.objects.filter(version=version).exists()


def router_artefact(version: str) -> bytes | None:
    data = RouterModel.objects.filter(version=version).values_list("artefact", flat=True).first()
    return None if data is None else bytes(data)


# -- routed turns --------------------------------------------------------------------------------------

def do_log_routed_turn(**fields: Any) -> None:
    """Record how a message was routed (once per msg_id; a retried preprocess adds nothing)."""
    RoutedTurn.objects.bulk_create([RoutedTurn(**fields)], ignore_conflicts=True)


def do_relabel_routed_turn(actor: str, turn: RoutedTurn, intent: str) -> IntentExample:
    """Mark the right intent of a misrouted turn and keep its text as a training example of it."""
    if intent not in known_intents():
        raise RoutingError(f"no skill answers intent {intent!r}")
    with transaction.atomic():
        before = {"predicted_intent": turn.predicted_intent, "corrected_intent": turn.corrected_intent}
        RoutedTurn.objects.filter(pk=turn.pk).update(corrected_intent=intent, corrected_by=actor)
        # The same words under another intent would teach the router both answers.
        IntentExample.objects.filter(text=turn.text).exclude(intent=intent).update(enabled=False)
        example, _ = IntentExample.objects.update_or_create(
            intent=intent, text=turn.text,
            defaults={"enabled": True, "language": language_of(turn.text),
                      "source": IntentExample.Source.RELABEL, "created_by": actor,
                      "origin_tenant_id": turn.tenant_id, "origin_user_id": turn.user_id},
        )
        record_audit(actor=actor, action=AuditAction.ROUTED_TURN_RELABEL, target_type="routed_turn",
                     target_id=turn.msg_id, tenant_id=turn.tenant_id, before=before,
                     after={"corrected_intent": intent}, detail={"intent_example_id": example.pk})
    turn.refresh_from_db()
    return example


def do_purge_routed_turns(days: int | None = None) -> int:
    """Delete routed turns older than the retention (ROUTED_TURN_RETENTION_DAYS); returns the count."""
    days = get_settings().routed_turn_retention_days if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = RoutedTurn.objects.filter(created_at__lt=cutoff).delete()
    return deleted
