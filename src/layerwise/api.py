"""The service layer: every front end (the CLI, the HTTP server, a Python user) goes through here.

A :class:`Library` is one home folder and metadata database; it opens
collections and keeps one loaded encoder per model, so a long-running process
loads each model once. A :class:`KnowledgeBase` is one collection: it adds and
indexes documents, searches any view spec of the grammar, compares views,
evaluates them, stores named views and a default view, deletes, checks and
exports. Its searcher stays warm between calls and is replaced when another
process commits (the collection's generation changes).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layerwise import layers as grammar
from layerwise.errors import CollectionNotFound, UsageError
from layerwise.evaluation.evaluation import Evaluation, evaluate
from layerwise.evaluation.diagnostics import Diagnostics, diagnose
from layerwise.evaluation.runs import RunDiff, StoredRun, diff_runs, list_runs, load_run, save_run, stored_runs
from layerwise.indexer import light, staged
from layerwise.indexer.inputs import InputReport, TableColumns, read_documents, read_texts
from layerwise.indexer.light import LightEncoder
from layerwise.indexer.pipeline import IndexSummary, check_batch_docs, check_splitting, index_documents
from layerwise.search.searcher import Comparison, SearchResult, Searcher, check_k
from layerwise.settings import EncoderSettings
from layerwise.storage import arrays, check as checking, compaction, faiss_index
from layerwise.storage.collection import Collection, Store
from layerwise.storage.report import describe
from layerwise.storage.views import all_views, save_fusion, save_mix, stored_specs, update_all
from layerwise.types import JSON_SCHEMA_VERSION, Document, Hit, LayerEmbeddings, ModelIdentity, QueryEncoder

if TYPE_CHECKING:
    from layerwise.indexer.token_export import ExportSummary
    from layerwise.evaluation.learn_mix import LearnedMix
    from layerwise.indexer.encoder import Encoder

DEFAULT_VIEW = "-1"


@dataclass
class IndexReport:
    """What an indexing call did: the run's summary and what reading the inputs skipped or repaired."""

    collection: str
    summary: IndexSummary
    inputs: InputReport = field(default_factory=InputReport)

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": JSON_SCHEMA_VERSION, "collection": self.collection, **self.summary.__dict__, "read": self.inputs.read,
                "skipped": self.inputs.skipped, "warnings": self.inputs.warnings}


class Library:
    """One home folder and database: its collections, and one cached encoder per model settings."""

    def __init__(self, home: str | Path | None = None, db: str | None = None, *, device: str = "auto", dtype: str = "auto",
                 query_encoder: str = "auto") -> None:
        if query_encoder not in ("auto", "full"):
            raise UsageError(f"unknown query encoder '{query_encoder}': use auto or full")
        self.store = Store(db, home)
        self.device = device
        self.dtype = dtype
        self.query_encoder = query_encoder
        self._encoders: dict[EncoderSettings, Encoder] = {}
        self._light: dict[EncoderSettings, LightEncoder | None] = {}
        self._staged: dict[EncoderSettings, staged.StagedEncoder | None] = {}
        self._bases: dict[str, KnowledgeBase] = {}
        self._lock = threading.Lock()

    @property
    def home(self) -> Path:
        return self.store.home

    def names(self) -> list[str]:
        return self.store.names()

    def encoder(self, settings: EncoderSettings) -> "Encoder":
        """The loaded encoder for these settings (loaded once per process)."""
        from layerwise.indexer.encoder import Encoder  # torch and transformers load only when a model is needed

        with self._lock:
            if settings not in self._encoders:
                self._encoders[settings] = Encoder(settings)
            return self._encoders[settings]

    def index_encoder(self, settings: EncoderSettings) -> "Encoder | staged.StagedEncoder":
        """The encoder of an indexing run. With ``query_encoder="auto"``, a staged one where the light encoder
        serves the settings: numpy for a run's first few passages, torch loaded only when more come (a one-shot
        index of a small job never imports torch); else, or once torch is loaded here anyway, the full one."""
        if self.query_encoder == "auto":
            with self._lock:
                if settings in self._encoders:
                    return self._encoders[settings]
            found = self._staged.get(settings, False)
            if found is False:
                found = staged.load(settings, lambda: self.encoder(settings))
                with self._lock:
                    found = self._staged.setdefault(settings, found)
            if found is not None:
                return found.loaded or found
        return self.encoder(settings)

    def encoder_for(self, identity: ModelIdentity) -> QueryEncoder:
        """The query encoder of a collection's model, on this library's device and dtype.

        With ``query_encoder="auto"`` it is the light numpy encoder where that serves the settings
        (a one-shot search then never imports torch), else the full one; ``"full"`` always loads
        the full encoder (a server, which loads it once and may index too)."""
        settings = EncoderSettings.from_identity(identity, self.device, self.dtype)
        if self.query_encoder == "auto":
            with self._lock:
                if settings not in self._light:
                    self._light[settings] = light.load(settings)
                found = self._light[settings]
            if found is not None:
                return found
        return self.encoder(settings)

    def open(
        self,
        name: str,
        *,
        create: bool = False,
        settings: EncoderSettings | None = None,
        overlap: int | None = None,
        max_passages: int | None = None,
        vector_dtype: str | None = None,
    ) -> "KnowledgeBase":
        """The named collection; with ``create``, made with these settings if it does not exist yet."""
        try:
            collection = self.store.open(name)
        except CollectionNotFound:
            if not create:
                raise
            encoder = self.index_encoder(settings or EncoderSettings(device=self.device, dtype=self.dtype))
            overlap = 32 if overlap is None else overlap
            check_splitting(encoder, overlap, max_passages)  # before anything is stored
            collection = self.store.create(name, encoder.identity, vector_dtype or "float32", overlap, max_passages)
            base = KnowledgeBase(self, collection, settings, created=True)
            with self._lock:  # the same encoder under the settings the collection's identity fills in: no second load
                if isinstance(encoder, staged.StagedEncoder):
                    self._staged.setdefault(base.settings(), encoder)
                else:
                    self._encoders.setdefault(base.settings(), encoder)
            return base
        _refuse_changes(collection, overlap=overlap, max_passages=max_passages, vector_dtype=vector_dtype)
        return KnowledgeBase(self, collection, settings)

    def cached(self, name: str) -> "KnowledgeBase":
        """A long-lived knowledge base per collection (what a server holds), reopened if it was dropped and remade."""
        with self._lock:
            base = self._bases.get(name)
        if base is None or not base.alive():
            base = self.open(name)
            with self._lock:
                self._bases[name] = base
        return base

    def require(self, name: str) -> None:
        """Raise CollectionNotFound, naming the collections there are, unless this one exists."""
        self.store.open(name, verify=False)

    def drop(self, name: str) -> None:
        """Delete a collection: its rows, vectors and indices, under its writer lock."""
        self.store.drop(name)
        with self._lock:
            self._bases.pop(name, None)

    def runs(self, collection: str | None = None) -> list[StoredRun]:
        """Stored evaluation runs, newest first (one collection's when named)."""
        return stored_runs(self.store, collection)

    def run(self, run_id: int) -> StoredRun:
        """One stored evaluation run by id."""
        return load_run(self.store, run_id)

    def diff_runs(self, a: int, b: int, metric: str | None = None, **options: Any) -> RunDiff:
        """Two stored runs side by side with a paired test per shared view (see evaluation.runs.diff_runs)."""
        return diff_runs(self.run(a), self.run(b), metric, **options)

    def layer_diagnostics(self, collection: str, **options: Any) -> Diagnostics:
        """Norms, anisotropy and linear CKA of every hidden state, from the stored vectors (no encoder)."""
        return diagnose(self.store.open(collection), **options)


def _refuse_changes(collection: Collection, **asked: Any) -> None:
    """Options fixed at creation cannot change later: refuse rather than silently ignore them."""
    for option, value in asked.items():
        current = getattr(collection, option)
        if value is not None and value != current:
            flag = "--" + option.replace("_", "-")
            raise UsageError(
                f"collection '{collection.name}' was created with {flag} {current}; it cannot change to {value}: "
                f"leave {flag} out, or index into a new collection"
            )


class KnowledgeBase:
    """One collection: add, index, search, compare, evaluate, views, delete, check and export."""

    def __init__(
        self, library: Library, collection: Collection, settings: EncoderSettings | None = None, *, created: bool = False
    ) -> None:
        self.library = library
        self.collection = collection
        self._settings = settings
        self._created = created  # made by this open: bad input to its first indexing call leaves nothing behind
        self._searcher: Searcher | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.collection.name

    def alive(self) -> bool:
        try:
            self.collection.state()
        except CollectionNotFound:
            return False
        return True

    # -- writing -----------------------------------------------------------------------------
    def settings(self) -> EncoderSettings:
        """The encoder settings that reproduce this collection's vectors."""
        base = self._settings or EncoderSettings(device=self.library.device, dtype=self.library.dtype)
        return base.filled_from(self.collection.identity)

    def add(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        titles: Sequence[str] | None = None,
        metadata: Sequence[Mapping[str, Any]] | None = None,
        *,
        progress: bool = False,
    ) -> IndexReport:
        """Index texts as documents (ids default to their positions); changed texts are re-encoded."""
        with self._nothing_left_on_bad_input():
            docs = _documents(texts, ids, titles, metadata)
            return self._index(docs, InputReport(read=len(docs)), progress=progress)

    def index(
        self,
        paths: Sequence[str | Path],
        *,
        columns: TableColumns = TableColumns(),
        sync: bool = False,
        batch_docs: int = 512,
        index_type: str | None = None,
        engine: str = "local",
        ray_address: str | None = None,
        ray_actors: int = 2,
        progress: bool = False,
    ) -> IndexReport:
        """Index files and folders (.txt/.md, BEIR .jsonl, .csv/.tsv); ``sync`` removes documents no longer there."""
        with self._nothing_left_on_bad_input():
            check_batch_docs(batch_docs)
            report = InputReport()
            docs = list(read_documents([Path(p) for p in paths], report, columns))
            if index_type and index_type != self.collection.index_type:
                faiss_index.choose(index_type, 0)
                self.collection.set_index_type(index_type)
            return self._index(docs, report, sync=sync, batch_docs=batch_docs, engine=engine, ray_address=ray_address,
                               ray_actors=ray_actors, progress=progress)

    @contextmanager
    def _nothing_left_on_bad_input(self) -> Iterator[None]:
        """Drop the collection this open created when its first indexing call fails on bad input before any commit."""
        created, self._created = self._created, False
        try:
            yield
        except UsageError:
            if created and self.collection.vector_rows() == 0:
                self.library.drop(self.name)
            raise

    def _index(self, docs: list[Document], report: InputReport, *, engine: str = "local", ray_address: str | None = None,
               ray_actors: int = 2, **options: Any) -> IndexReport:
        if engine not in ("local", "ray"):
            raise UsageError(f"unknown engine '{engine}': use local or ray")
        if engine == "ray":
            from layerwise.indexer.ray_engine import RayEncoder  # ray is an optional extra

            encoder: Any = RayEncoder(self.library.encoder(self.settings()), ray_address, ray_actors)
        else:
            encoder = self.library.index_encoder(self.settings())
        report.warnings.extend(self.collection.notices)  # said once, with the first indexing after creation
        self.collection.notices = []
        summary = index_documents(self.collection, encoder, docs, report, **options)
        return IndexReport(self.name, summary, report)

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Remove documents (their rows are marked dead, every index updated in place); return how many existed."""
        with self.collection.writing():
            self.collection.prepare_write()
            removed = self.collection.delete_documents(list(doc_ids))
            if removed:
                update_all(self.collection)
        return removed

    def compact(self) -> compaction.CompactReport:
        """Rewrite the vector files without the rows of deleted documents (crash-safe, under the writer lock)."""
        with self.collection.writing():
            self.collection.prepare_write()
            report = compaction.compact(self.collection, all_views(self.collection))
            update_all(self.collection)
        return report

    def save_view(self, name: str, spec: str, *, query_spec: str | None = None, index_type: str = "flat") -> str:
        """Store a named view: a mix (indexed from the stored vectors, no encoder run) or a fusion."""
        parsed = grammar.parse_view(spec)
        if isinstance(parsed, (grammar.Fusion, grammar.Lexical)):
            return save_fusion(self.collection, name, spec)
        return save_mix(self.collection, name, spec, query_spec, index_type=index_type).describe()

    def set_default_view(self, spec: str | None) -> str:
        """The view a plain search uses (None resets to the last layer); checked against the collection first."""
        if spec is not None:
            self.searcher().plan([spec])
        with self.collection.writing():
            self.collection.set_default_view(spec)
        return spec or DEFAULT_VIEW

    def check(self, *, repair: bool = False, recall: bool = False, deep: bool = False) -> checking.CheckReport:
        """Verify the collection (``deep``: every vector byte too); ``repair`` re-encodes damaged vector rows from the
        stored passage texts (loading the model only then) and rebuilds every index from verified vectors."""
        if repair:
            return checking.repair(self.collection, reencode=self._reencode)
        return checking.check(self.collection, recall=recall, deep=deep)

    def _reencode(self, texts: list[str], layers: list[int]) -> Any:
        """Vectors (texts, layers, dim) of passage texts from the collection's own encoder."""
        encoder = self.library.encoder(self.settings())
        self.collection.check_identity(encoder.identity)
        return encoder.encode(texts, layers).vectors

    # -- reading -----------------------------------------------------------------------------
    @property
    def default_view(self) -> str:
        return self.collection.default_view() or DEFAULT_VIEW

    def info(self) -> dict[str, Any]:
        return {"schema_version": JSON_SCHEMA_VERSION, **describe(self.collection)}

    def views(self) -> list[dict[str, str]]:
        """Every layer view and every stored view, with its spec."""
        layers = [{"name": grammar.layer_name(i), "spec": str(i), "kind": "layer"} for i in range(self.collection.num_states)]
        stored = [{"name": n, "spec": s, "kind": "stored"} for n, s in stored_specs(self.collection).items()]
        return layers + stored

    def searcher(self) -> Searcher:
        """The warm searcher, replaced when the collection changed since it was made."""
        with self._lock:
            if self._searcher is None or self._searcher.generation != self.collection.state()[0]:
                self.collection.forget_rows()
                device = "cuda" if self.library.device.startswith("cuda") else "cpu"
                self._searcher = Searcher(self.collection, self.library.encoder_for, device)
            return self._searcher

    def search(self, query: str, view: str | None = None, k: int = 10) -> list[Hit]:
        """The top-k documents of one view (default: the collection's default view)."""
        result = self.search_views(query, [view or self.default_view], k)
        if len(result.results) != 1:
            raise UsageError(f"'{view}' names {len(result.results)} views: search one view, or use search_views/compare")
        return result.hits()

    def search_views(self, query: str, views: Sequence[str] | None = None, k: int = 10) -> SearchResult:
        """Top-k documents under every view the specs name, one query encoding for all."""
        return self.searcher().search(query, list(views or [self.default_view]), k)

    def compare(self, query: str, views: str | Sequence[str] = "all", k: int = 10) -> Comparison:
        """Top-k of several views side by side and their Jaccard@k overlap."""
        return self.searcher().compare(query, [views] if isinstance(views, str) else list(views), k)

    def evaluate(self, queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]], views: Sequence[str] | None = None,
                 *, save: bool = True, **options: Any) -> Evaluation:
        """Score views on labelled queries (see evaluation.evaluate for the options); the run is stored."""
        result = evaluate(self.searcher(), queries, qrels, views, **options)
        if save:
            result.config["run_id"] = save_run(self.collection, result)
        return result

    def learn_mix(self, queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]], name: str = "learned",
                  **options: Any) -> "LearnedMix":
        """Learn layer weights from training qrels and store them as a view."""
        from layerwise.evaluation.learn_mix import learn  # torch

        learned = learn(self.searcher(), queries, qrels, **options)
        save_mix(self.collection, name, learned.doc_spec, learned.query_spec)
        return learned

    def runs(self) -> list[dict[str, Any]]:
        """Stored evaluation runs, newest first."""
        return list_runs(self.collection)

    def export(self, path: str | Path, layers: str = "all") -> Path:
        """Write the stored vectors of some hidden states, with document ids, passage ids and spans, without encoding."""
        target = arrays.check_output(Path(path))
        states = _selection(layers).resolve(self.collection.num_states)
        rows, doc_ids, ordinals, spans = self.collection.passage_spans()
        stack = [self.collection.layer_vectors(i)[rows] for i in states]  # k x (n, d)
        vectors = _stack(stack, len(rows), self.collection.identity.dim)
        columns = {"row": rows, "passage": ordinals, "char_span": spans}
        data = arrays.LabelledVectors(vectors, states, self.collection.identity.to_dict(), doc_ids, columns)
        return arrays.write(target, data)


def _stack(per_layer: list[Any], n: int, dim: int) -> Any:
    import numpy as np

    if not per_layer:
        return np.zeros((n, 0, dim), dtype=np.float32)
    return np.stack([np.asarray(v, dtype=np.float32) for v in per_layer], axis=1)  # (n, k, d)


def _selection(spec: str) -> grammar.Selection:
    parsed = grammar.parse(spec)
    if not isinstance(parsed, grammar.Selection):
        raise UsageError(f"'{spec}' is a mix: export and embed write hidden states; give a selection such as all, -1 or -4:")
    return parsed


def _documents(texts: Sequence[str], ids: Sequence[str] | None, titles: Sequence[str] | None,
               metadata: Sequence[Mapping[str, Any]] | None) -> list[Document]:
    n = len(texts)
    for what, values in (("ids", ids), ("titles", titles), ("metadata", metadata)):
        if values is not None and len(values) != n:
            raise UsageError(f"{len(values)} {what} for {n} texts: give one per text")
    ids = [str(i) for i in (ids if ids is not None else range(n))]
    if len(set(ids)) != n:
        raise UsageError("document ids repeat: give each text its own id")
    return [Document(ids[i], (titles[i] if titles else "") or "", str(texts[i]).strip(), dict(metadata[i]) if metadata else {})
            for i in range(n)]


def open(name: str, *, home: str | Path | None = None, db: str | None = None, create: bool = True,  # noqa: A001
         **settings: Any) -> KnowledgeBase:
    """Open (or create, with ``EncoderSettings`` keywords such as model=, pooling=) a collection."""
    library = Library(home, db, device=settings.get("device", "auto"), dtype=settings.get("dtype", "auto"))
    return library.open(name, create=create, settings=EncoderSettings(**settings))


def embed(texts: Sequence[str], layers: str = "all", **settings: Any) -> LayerEmbeddings:
    """Pooled vectors of the chosen hidden states for each text, with labels and the model identity."""
    from layerwise.indexer.encoder import Encoder

    encoder = Encoder(EncoderSettings(**settings))
    return encoder.encode(list(texts), _selection(layers).resolve(encoder.num_states))


def embed_file(path: Path, output: Path, layers: str = "all", text_column: str = "text", progress: bool = False,
               **settings: Any) -> tuple[Path, LayerEmbeddings]:
    """Embed every text of a file and write them where ``output``'s suffix says; the output is checked first."""
    from layerwise.indexer.encoder import Encoder

    arrays.check_output(output)
    selection = _selection(layers)
    ids, texts = read_texts(path, text_column)
    encoder = Encoder(EncoderSettings(**settings))
    result = encoder.encode(texts, selection.resolve(encoder.num_states), progress=progress)
    data = arrays.LabelledVectors(result.vectors, result.layers, result.model.to_dict(), ids, {})
    return arrays.write(output, data), result


def embed_tokens_file(path: Path, output: Path, layers: str = "all", text_column: str = "text", *, words: bool = False,
                      stride: int | None = None, max_tokens: int | None = None, progress: bool = False, model: str | None = None,
                      device: str = "auto", dtype: str = "auto", pooling: str | None = None, quantize: str | None = None) -> "ExportSummary":
    """Every token's vector (or every word's, ``words``) of every text in a file, streamed to .npz or .safetensors."""
    from layerwise.indexer.token_export import export_with_model

    if pooling is not None:
        raise UsageError("--tokens exports token vectors, not pooled ones: leave out --pooling (or use --words to pool sub-words)")
    if quantize:
        raise UsageError("--tokens exports the model's own fp32/bf16 states: leave out --quantize")
    ids, texts = read_texts(path, text_column)
    return export_with_model(model, ids, texts, layers, output, words=words, stride=stride, max_tokens=max_tokens,
                             device=device, dtype=dtype, progress=progress)


__all__ = ["Library", "KnowledgeBase", "IndexReport", "SearchResult", "Comparison", "Hit", "check_k", "open", "embed", "embed_file"]
