"""Knowledge collections: documents loaded (FAQ tables, Markdown, HTML, text, PDF),
chunked, indexed dense (a sentence encoder, exact search with numpy), sparse (BM25 with
bm25s) and searched alone or fused (reciprocal rank fusion or weighted), in immutable
versions stored as artifacts."""
