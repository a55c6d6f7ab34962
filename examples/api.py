"""The public API in a few lines: get-or-create a collection, add texts, hybrid search, compare layers, embed."""

import layerwise

kb = layerwise.open("api-demo")  # get or create, in $LAYERWISE_HOME
kb.add(["Rotate logs daily with logrotate.", "Bake sourdough at 230 C."], ids=["logs", "bread"])
for hit in kb.search("how do I rotate the logs", view="rrf(bm25 | -1)", k=2):
    print(hit.rank, hit.doc_id, round(hit.score, 4))
print(kb.compare("sourdough", views="all", k=1).jaccard.shape)
vectors = layerwise.embed(["any text"], layers="all").vectors  # (1, 7, 384)
print(vectors.shape)
