"""Documents in the admin and by command: every row change goes through an audited action that keeps
the vector store (a real pgvector) in step: upload ingests, a move re-files the chunks, delete removes them."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from webapp.actions.documents import vector_store
from webapp.models import AuditLog, Document, DocumentCollection

pytestmark = [pytest.mark.slow, pytest.mark.django_db]  # a real pgvector server and the e5 embedder

HANDBOOK = b"# Handbook\n\n## Annual leave\n\nEvery employee gets 15 days of paid annual leave per year.\n"


@pytest.fixture
def staff_client(client, django_user_model, pgvector_url, resources, settings, tmp_path):
    settings.BASE_DIR = tmp_path  # uploaded originals land in this test's folder
    resources.set(VECTOR_DATABASE_URL=pgvector_url)
    client.force_login(django_user_model.objects.create_superuser("editor", "e@example.com", None))
    return client


def in_store(collection: str, document: Document) -> bool:
    found = vector_store().find_by_hash(collection, document.sha256)
    return found is not None and found.doc_key == document.doc_key


def test_uploading_moving_and_deleting_a_document_in_admin_keeps_the_store_in_step(staff_client):
    add_collection = reverse("admin:webapp_documentcollection_add")
    for name in ("handbook", "archive"):
        response = staff_client.post(add_collection, {"name": name, "departments": "[]", "description": ""})
        assert response.status_code == 302, response.content.decode()[:2000]
    handbook, archive = DocumentCollection.objects.get(name="handbook"), DocumentCollection.objects.get(name="archive")
    response = staff_client.post(reverse("admin:webapp_document_add"), {
        "collection": handbook.pk, "title": "Handbook", "file": SimpleUploadedFile("handbook.md", HANDBOOK)})
    assert response.status_code == 302, response.content.decode()[:2000]
    document = Document.objects.get()
    assert document.status == Document.Status.READY and document.n_chunks >= 1
    assert document.uploaded_by.username == "editor" and in_store("handbook", document)

    response = staff_client.post(reverse("admin:webapp_document_change", args=[document.pk]),
                                 {"collection": archive.pk, "title": "Handbook"})
    assert response.status_code == 302, response.content.decode()[:2000]
    document.refresh_from_db()
    assert in_store("archive", document) and not in_store("handbook", document)

    staff_client.post(reverse("admin:webapp_document_delete", args=[document.pk]), {"post": "yes"})
    assert not Document.objects.exists() and not in_store("archive", document)
    actions = list(AuditLog.objects.exclude(action="admin.login").order_by("id").values_list("action", flat=True))
    assert actions == ["document_collection.save"] * 2 + ["document.upload", "document.save", "document.delete"]
    assert {row.actor for row in AuditLog.objects.all()} == {"editor"}
    upload = AuditLog.objects.get(action="document.upload")
    assert upload.detail["size"] > 0 and len(upload.detail["sha256"]) == 64 and "departments" in upload.detail


def test_the_command_creates_the_collection_and_replaces_a_reupload(staff_client, tmp_path):
    path = tmp_path / "Leave policy.md"
    path.write_bytes(HANDBOOK)
    call_command("ingest_documents", str(path), "--collection", "policies", "--public", stdout=io.StringIO())
    path.write_bytes(HANDBOOK + b"\n## Sick leave\n\nTell your manager before 10:00.\n")
    call_command("ingest_documents", str(path), "--collection", "policies", stdout=io.StringIO())
    [document] = Document.objects.all()  # the same row, re-ingested
    assert document.status == Document.Status.READY and in_store("policies", document)
    assert list(AuditLog.objects.exclude(action="admin.login").order_by("id").values_list("action", flat=True)) == [
        "document_collection.save", "document.upload", "document.save"]
    assert AuditLog.objects.filter(actor="manage.py ingest_documents").count() == 3
