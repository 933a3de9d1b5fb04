"""The document search skill: answers from uploaded documents (pgvector hybrid search), with citations."""
