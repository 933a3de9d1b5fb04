"""`python manage.py ingest_documents PATH... --collection NAME`: bulk-load files into a collection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser

from skills.docsearch.extract import SUPPORTED_SUFFIXES
from webapp.actions.documents import do_save_collection, do_sync_collection, do_upload_document
from webapp.management.progress import progress
from webapp.models.documents import Document, DocumentCollection

ACTOR = "manage.py ingest_documents"


def _files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise CommandError(f"no such file or directory: {raw}")
    return found


class Command(BaseCommand):
    help = "Ingest txt/md/pdf/docx files (or folders of them) into a document collection."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--collection", required=True)
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--departments", help="create the collection for these department ids (comma-separated)")
        group.add_argument("--public", action="store_true", help="create the collection searchable by everyone")
        parser.add_argument("--if-missing", action="store_true",
                            help="do nothing when the collection exists (the sandbox's sample handbook at start)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_missing"] and DocumentCollection.objects.filter(name=options["collection"]).exists():
            self.stdout.write(f"collection {options['collection']!r} exists; nothing to do (--if-missing)")
            return
        collection = self._collection(options["collection"], options["departments"], options["public"])
        failed = 0
        files = _files(options["paths"])
        with progress(f"ingesting into {collection.name}", total=len(files), stream=self.stderr) as bar:
            for path in files:
                with path.open("rb") as fh:
                    document = do_upload_document(collection, path.stem, path.name, File(fh), actor=ACTOR)
                failed += document.status == Document.Status.FAILED
                self.stdout.write(f"{path}: {document.status}, {document.n_chunks} chunks {document.error}".rstrip())
                bar.advance()
        if failed:
            raise CommandError(f"{failed} file(s) failed")

    def _collection(self, name: str, departments: str | None, public: bool) -> DocumentCollection:
        collection = DocumentCollection.objects.filter(name=name).first()
        if collection is None:
            if departments is None and not public:
                raise CommandError(
                    f"collection {name!r} does not exist: create it in the admin, or pass --departments "
                    "1001,1002 (restricted) or --public (everyone)"
                )
            depts = [d.strip() for d in (departments or "").split(",") if d.strip()]
            return do_save_collection(DocumentCollection(name=name, departments=depts), actor=ACTOR)
        do_sync_collection(collection)
        return collection
