"""Ingestion and hybrid search on a real PostgreSQL + pgvector with the real e5 model; ACL in SQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest

from skills.docsearch.ingest import ingest, ingest_document
from skills.docsearch.skill import DocSearchConfig, DocSearchSkill
from skills.docsearch.store import PgVectorStore, UnknownCollection
from testkit.personas import alice, bob
from tests.skills.docsearch.documents import make_docx, make_pdf

pytestmark = pytest.mark.slow  # starts an embedded PostgreSQL and runs the embedding model

HANDBOOK_MD = """# 员工手册
## 年假
员工每年享有十五天带薪年假，须提前三个工作日在系统中申请。未休年假可顺延至次年三月底。
## 加班
加班须经部门经理批准，加班时长可在三个月内调休。
# Employee handbook
## Remote work
Employees may work from home two days per week with their manager's approval.
## Parking
Parking permits are issued by the facilities team at the front desk.
""".encode()

SALARY_DOCX = [
    ("h1", "薪酬制度"),
    ("h2", "年终奖"),
    ("p", "年终奖在每年一月发放，金额为一到三个月工资，取决于绩效评级。"),
    ("h2", "Salary bands"),
    ("p", "Engineering salary band L5 ranges from 40,000 to 55,000 CNY per month."),
]

TRAVEL_PDF = [["Travel policy", "Hotel rooms on business trips are capped at 500 CNY per night."],
              ["差旅报销", "出差住宿标准为每晚不超过五百元，发票须在三十天内提交财务部。"]]


@pytest.fixture(scope="module")
def store(pgvector_url: str) -> Iterator[PgVectorStore]:
    store = PgVectorStore(pgvector_url)
    store.ensure_schema()
    yield store
    store.close()


@pytest.fixture(scope="module")
def corpus(store: PgVectorStore, embedder: Any) -> dict[str, str]:
    """Three collections: public handbook, HR-only salaries, finance-only travel rules."""
    names = {k: f"{k}-{uuid.uuid4().hex[:6]}" for k in ("handbook", "salary", "travel")}
    store.set_collection(names["handbook"], [])
    store.set_collection(names["salary"], ["hr"])
    store.set_collection(names["travel"], ["finance", "hr"])
    ingest(store, names["handbook"], "员工手册", "handbook.md", HANDBOOK_MD, embedder=embedder)
    ingest(store, names["salary"], "薪酬制度", "salary.docx", make_docx(SALARY_DOCX), embedder=embedder)
    ingest(store, names["travel"], "Travel policy", "travel.pdf", make_pdf(TRAVEL_PDF), embedder=embedder)
    return names


def search(store: PgVectorStore, embedder: Any, question: str, departments: list[str], k: int = 3) -> list[Any]:
    return store.search(embedder.embed_query(question), question, departments, k=k)


def test_schema_creation_is_idempotent_and_builds_an_hnsw_cosine_index(store: PgVectorStore, pgvector_url: str) -> None:
    store.ensure_schema()
    with psycopg2.connect(pgvector_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'docsearch_chunk_embedding_hnsw'")
        row = cur.fetchone()
        assert row is not None
        (indexdef,) = row
    conn.close()
    assert "USING hnsw (embedding vector_cosine_ops)" in indexdef


@pytest.mark.parametrize("question,departments,section", [
    ("年假有几天", [], "员工手册 > 年假"),
    ("加班可以调休吗", [], "员工手册 > 加班"),
    ("how many days can I work from home", [], "Employee handbook > Remote work"),
    ("where do I get a parking permit", [], "Employee handbook > Parking"),
    ("年终奖什么时候发", ["hr"], "薪酬制度 > 年终奖"),
    ("what is the salary band for L5 engineers", ["hr"], "薪酬制度 > Salary bands"),
    ("出差住宿标准是多少", ["finance"], "p. 2"),
    ("hotel limit per night on business trips", ["finance"], "p. 1"),
])
def test_the_right_passage_ranks_first_in_chinese_and_english(
    store: PgVectorStore, embedder: Any, corpus: dict[str, str], question: str, departments: list[str], section: str,
) -> None:
    hits = search(store, embedder, question, departments)
    assert hits, question
    assert hits[0].section == section, [(h.section, round(h.score, 4)) for h in hits]


@pytest.mark.parametrize("question", ["年终奖什么时候发", "Engineering salary band L5", "薪酬制度 年终奖 绩效评级"])
def test_a_user_outside_the_department_never_gets_a_restricted_chunk(
    store: PgVectorStore, embedder: Any, corpus: dict[str, str], question: str,
) -> None:
    for departments in ([], ["finance"], ["engineering", "sales"]):
        hits = search(store, embedder, question, departments, k=20)
        assert corpus["salary"] not in {h.collection for h in hits}, departments
    assert corpus["salary"] in {h.collection for h in search(store, embedder, question, ["hr"], k=20)}


def test_changing_a_collections_departments_takes_effect_at_once(store: PgVectorStore, embedder: Any) -> None:
    name = f"memo-{uuid.uuid4().hex[:6]}"
    store.set_collection(name, ["legal"])
    ingest_document(store, name, "Memo", "memo.md", b"# Memo\nThe merger code name is BLUEBIRD.", embedder=embedder)
    assert all(h.collection != name for h in search(store, embedder, "merger code name", ["sales"], k=20))
    store.set_collection(name, ["legal", "sales"])
    assert search(store, embedder, "merger code name", ["sales"])[0].collection == name
    store.set_collection(name, [])  # public
    assert search(store, embedder, "merger code name", [])[0].collection == name
    assert store.rename_collection(name, name + "-renamed")
    assert search(store, embedder, "merger code name", [])[0].collection == name + "-renamed"


def test_the_same_bytes_are_stored_once_and_a_reupload_replaces_the_old_text(store: PgVectorStore, embedder: Any) -> None:
    name = f"faq-{uuid.uuid4().hex[:6]}"
    store.set_collection(name, [])
    first = ingest(store, name, "FAQ", "faq.md", b"# FAQ\nThe canteen opens at 7:30.", embedder=embedder)
    again = ingest(store, name, "FAQ copy", "faq-copy.md", b"# FAQ\nThe canteen opens at 7:30.", embedder=embedder)
    assert (first.status, again.status, again.duplicate_of) == ("stored", "duplicate", "faq.md")
    ingest(store, name, "FAQ", "faq.md", b"# FAQ\nThe canteen opens at 8:15 from May.", embedder=embedder)
    texts = [h.content for h in search(store, embedder, "when does the canteen open", [], k=20) if h.collection == name]
    assert texts == ["The canteen opens at 8:15 from May."]
    assert store.delete_document(name, "faq.md")
    assert not [h for h in search(store, embedder, "when does the canteen open", [], k=20) if h.collection == name]


def test_documents_only_go_into_collections_that_exist(store: PgVectorStore, embedder: Any) -> None:
    with pytest.raises(UnknownCollection):
        ingest_document(store, "no-such-collection", "X", "x.md", b"# X\ntext", embedder=embedder)


def test_the_skill_answers_from_the_documents_with_citations(store: PgVectorStore, embedder: Any,
                                                             corpus: dict[str, str]) -> None:
    skill = DocSearchSkill(DocSearchConfig(llm_base_url=""), store=store, embedder=embedder)
    reply = skill.execute(alice.turn("年假有几天？", profile={"departments": ["sales"]}))
    assert "十五天带薪年假" in reply.text
    assert reply.meta["citations"][0]["title"] == "员工手册"
    assert reply.meta["citations"][0]["section"] == "员工手册 > 年假"
    outsider = skill.execute(alice.turn("年终奖什么时候发？", profile={"departments": ["sales"]}))
    assert "一月发放" not in outsider.text
    insider = skill.execute(bob.turn("年终奖什么时候发？", profile={"departments": ["hr"]}))
    assert "一月发放" in insider.text


def test_an_empty_vector_database_url_starts_the_embedded_server_and_later_processes_attach(tmp_path: Any) -> None:
    import warnings

    import pgserver

    from skills.docsearch.embedded_pg import resolve_database_url

    assert resolve_database_url("postgresql://elsewhere/db", tmp_path / "unused") == "postgresql://elsewhere/db"
    assert not (tmp_path / "unused").exists()
    data_dir = tmp_path / "var" / "pgvector"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        url = resolve_database_url("", data_dir)
        try:
            assert resolve_database_url("", data_dir) == url  # attach, no second server
            store = PgVectorStore(url)
            store.ensure_schema()
            store.set_collection("c", [])
            store.close()
        finally:
            server = pgserver.get_server(data_dir)
            server.cleanup_mode = "delete"  # the app keeps it running; the test removes it
            server.cleanup()
    assert not data_dir.exists()
