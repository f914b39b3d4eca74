"""The Ray Data pipeline: corpus files -> spectrogram rows -> Parquet shards under FEATURES.

A pool of Ray Data actors, one per CPU, takes blocks of utterances; each block is read,
featurized and written as one shard (atomically) straight from the actor, and only a small
status row per file travels back to the driver, so memory stays flat however large the
corpus.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from featurize.audio import BadAudioError, decode_audio, perturb_speed, to_mono_at_rate
from featurize.config import FeatureConfig
from featurize.corpora import Layout
from featurize.corpus import SHOWN, MissingCorpusFileError, Utterance, discover
from featurize.encoder_pipeline import EncoderRun, EncoderSummary, embed_corpus
from featurize.encoders import EncoderSource
from featurize.functionals import Extractor, FunctionalsError, check_sets
from featurize.location import Location
from featurize.spectrogram import TooShortError, spectrogram_image
from featurize.store import (
    REJECTS_FILE,
    SUMMARY_FILE,
    existing_ids,
    functionals_ids,
    prepare_functionals,
    prepare_store,
    write_functionals_shard,
    write_shard,
)

SHARD_ROWS = 256  # default rows per Parquet shard (16 MiB of 128x128 float32)


class NothingFeaturizedError(RuntimeError):
    """Not a single file of the corpus could be featurized."""


def featurize_file(
    utt: dict[str, str],
    config: FeatureConfig,
    labels: tuple[str, ...],
    extractor: Extractor | None = None,
) -> list[dict] | dict:
    """One utterance -> its rows (one, plus one per ``config.speeds`` factor), or
    ``{"reject": reason}``. The per-file unit of work.

    A row holds the spectrogram unless ``utt["has_spectrogram"]`` says it is already stored,
    and a vector for each openSMILE set of ``extractor`` that ``utt["sets"]``
    (comma-separated) still lacks. A file that cannot be decoded, or that openSMILE cannot
    describe, is a reject; one that is missing here although the driver listed it means
    this node does not see the corpus, which fails the run.
    """
    try:
        with open(utt["path"], "rb") as f:
            data = f.read()
    except FileNotFoundError as err:
        raise MissingCorpusFileError(
            f"corpus file {utt['path']} exists on the driver but not on node {platform.node()}: "
            "the corpus must be on a shared filesystem that every node sees at the same path"
        ) from err
    except OSError as err:
        return {"reject": str(err)}
    try:
        samples, rate = decode_audio(data)
        signal = to_mono_at_rate(samples, rate, config.sample_rate)
        signals = {1.0: signal, **{s: perturb_speed(signal, s) for s in config.speeds}}
        made: dict[float, dict[str, Any]] = {speed: {} for speed in signals}
        for speed, played in signals.items():
            if utt.get("has_spectrogram") != "yes":
                made[speed]["spectrogram"] = spectrogram_image(played, config)
            if extractor is not None and utt.get("sets"):
                made[speed].update(extractor(played, config.sample_rate, utt["sets"].split(",")))
    except (BadAudioError, TooShortError, FunctionalsError, OSError) as err:
        return {"reject": str(err)}
    except Exception as err:  # a decoder bug must not take the other files down with it
        return {"reject": f"unexpected {type(err).__name__}: {err}"}
    row = {
        "utterance_id": utt["utterance_id"],
        "speaker": utt["speaker"],
        "emotion": utt["emotion"],
        "label": labels.index(utt["emotion"]),
        "utt_id": utt["utt_id"],
        "duration_s": samples.shape[0] / rate,
        "sample_rate": rate,
        "source": utt["source"],
        "sha1": hashlib.sha1(data).hexdigest(),
        "origin": utt["utterance_id"],
    }
    return [
        {
            **row,
            **({"utterance_id": f"{row['utterance_id']}~speed{speed:g}"} if speed != 1 else {}),
            "duration_s": row["duration_s"] / speed,
            **features,
        }
        for speed, features in made.items()
    ]


class FeaturizeBlocks:
    """Ray Data map_batches callable: featurize a block, write its good rows as one shard
    (and one shard per functionals set).

    A class, so Ray Data runs it in a pool of long-lived actors: each imports the audio and
    image libraries (and builds openSMILE) once, and the next blocks wait queued at the
    actor instead of being dispatched one at a time after each finishes.
    """

    def __init__(
        self,
        config: FeatureConfig,
        labels: tuple[str, ...],
        features: str,
        sets: tuple[str, ...] = (),
    ) -> None:
        import cv2

        cv2.setNumThreads(1)  # one actor per CPU already; cv2's own pool would oversubscribe
        self.config, self.labels, self.features = config, labels, features
        self.extractor = Extractor(sets) if sets else None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        keys = list(batch)
        utts = [{k: str(batch[k][i]) for k in keys} for i in range(len(batch["source"]))]
        results = [featurize_file(u, self.config, self.labels, self.extractor) for u in utts]
        rows = [row for r in results if isinstance(r, list) for row in r]
        images = [row for row in rows if "spectrogram" in row]
        if images:
            write_shard(self.features, images, self.config, self.labels)
        for name in self.extractor.sets if self.extractor else ():
            mine = [row for row in rows if name in row]
            if mine:
                vectors = np.stack([row[name] for row in mine])
                ids = [row["utterance_id"] for row in mine]
                names = self.extractor.names(name)
                write_functionals_shard(self.features, name, ids, vectors, names)
        return {
            "source": np.array([u["source"] for u in utts]),
            "reject": np.array([r["reject"] if isinstance(r, dict) else "" for r in results]),
        }


@dataclass
class FeaturizeSummary:
    features: str
    files_seen: int
    featurized: int
    skipped: int  # already in FEATURES from an earlier run
    rejected: int
    elapsed_s: float
    config: dict[str, Any]
    labels: list[str]
    rejects: list[tuple[str, str]] = field(default_factory=list)
    corpus: str = ""  # a named corpus (--corpus), or "" for the CASIA layout or a manifest
    label_map: dict[str, str] = field(default_factory=dict)  # its own labels -> shared names
    not_speech: int = 0  # files its convention says are no emotional speech (RAVDESS song)
    functionals: list[str] = field(default_factory=list)  # openSMILE sets asked for
    copies: list[tuple[str, str]] = field(default_factory=list)  # the same audio, left out
    encoders: list[EncoderSummary] = field(default_factory=list)  # encoder sets asked for

    def lines(self) -> list[str]:
        """What a person reads of it: the counts, a named corpus's labels, then each rejected
        file with its reason."""
        counts = (
            f"featurize: {self.files_seen} files seen, {self.featurized} featurized, "
            f"{self.skipped} skipped (already done), {self.rejected} rejected "
            f"in {self.elapsed_s:.1f} s -> {self.features}"
        )
        sets = ", ".join(self.functionals)
        named = [f"  with openSMILE functionals: {sets}"] if self.functionals else []
        if self.corpus:
            mapping = ", ".join(f"{own} -> {shared}" for own, shared in self.label_map.items())
            named.append(f"  {self.corpus} labels: {mapping}")
            if self.not_speech:
                named.append(f"  {self.not_speech} files not emotional speech, not read")
        if self.copies:
            named.append(f"  {len(self.copies)} files the same audio as another, left out:")
            named += [f"    {path}: {why}" for path, why in self.copies[:SHOWN]]
            if len(self.copies) > SHOWN:
                named.append(f"    and {len(self.copies) - SHOWN} more (in {SUMMARY_FILE})")
        named += [encoder.line() for encoder in self.encoders]
        return [counts, *named, *(f"  rejected {path}: {reason}" for path, reason in self.rejects)]

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("rejects")
        for encoder in data["encoders"]:  # their rejects are in _rejects.csv too
            encoder["rejected"] = len(encoder["rejected"])
        return json.dumps(data, indent=2)


def run_featurize(
    corpus: Path,
    features: str,
    config: FeatureConfig | None = None,
    manifest: Path | None = None,
    address: str | None = None,
    shard_rows: int = SHARD_ROWS,
    progress: Callable[[str], None] = print,
    layout: Layout | None = None,
    functionals: tuple[str, ...] = (),
    encoders: tuple[EncoderSource, ...] = (),
    encoder_run: EncoderRun | None = None,
) -> FeaturizeSummary:
    """Featurize every utterance of ``corpus`` (read by a named corpus's ``layout``, else as
    ``discover`` says) not already in ``features``, with the openSMILE ``functionals`` sets
    ("egemaps", "compare") beside its spectrogram; resumable, and an utterance featurized
    before gains a set without its spectrogram being made again. Then each of ``encoders``
    (resolved beforehand, ``featurize.encoders``) embeds the clips of FEATURES its set lacks
    (``featurize.encoder_pipeline``)."""
    from featurize.raysession import ensure_ray, require_visible_on_all_nodes

    corpus, features = Path(corpus).resolve(), Location(features)
    manifest = Path(manifest).resolve() if manifest else None
    config = config or FeatureConfig()
    sets = check_sets(functionals)
    start = time.perf_counter()
    found = discover(corpus, manifest, layout)
    labels = found.labels
    prepare_store(features, config, labels)
    prepare_functionals(features, sets, config.sample_rate)
    done = existing_ids(features)
    have = {name: functionals_ids(features, name) for name in sets}
    todo = [
        u
        for u in found.utterances
        if u.utterance_id not in done or any(u.utterance_id not in ids for ids in have.values())
    ]
    skipped = len(found.utterances) - len(todo)
    rejects = list(found.rejects)
    if todo:
        ray = ensure_ray(address)
        require_visible_on_all_nodes(features)
        progress(
            f"featurize: {len(todo)} files to do, {skipped} already in {features}, "
            f"{int(ray.available_resources().get('CPU', 0))} CPUs"
        )
        rejects += _featurize_on_ray(
            todo, done, have, config, labels, sets, features, shard_rows, progress
        )
    featurized = len(todo) - (len(rejects) - len(found.rejects))
    embedded = []
    for source in encoders:
        ensure_ray(address)
        require_visible_on_all_nodes(features)
        embedded.append(embed_corpus(
            found.utterances, config.speeds, features, source, encoder_run or EncoderRun(),
            progress,
        ))  # fmt: skip
        rejects += embedded[-1].rejected
    summary = FeaturizeSummary(
        features=features,
        files_seen=len(found.utterances)
        + len(found.rejects)
        + len(found.skipped)
        + len(found.copies),
        featurized=featurized,
        skipped=skipped,
        rejected=len(rejects) - sum(len(e.rejected) for e in embedded),
        elapsed_s=round(time.perf_counter() - start, 3),
        config=config.to_dict(),
        labels=list(labels),
        rejects=rejects,
        corpus=layout.name if layout else "",
        label_map=found.label_map,
        not_speech=len(found.skipped),
        functionals=list(sets),
        copies=list(found.copies),
        encoders=embedded,
    )
    features.child(REJECTS_FILE).write(_rejects_csv(rejects))
    features.child(SUMMARY_FILE).write(summary.to_json())
    if featurized == 0 and skipped == 0:
        raise NothingFeaturizedError(
            f"no file of {corpus} could be featurized; reasons in {features}/{REJECTS_FILE}"
        )
    return summary


def _featurize_on_ray(
    todo: list[Utterance],
    done: set[str],
    have: dict[str, set[str]],
    config: FeatureConfig,
    labels: tuple[str, ...],
    sets: tuple[str, ...],
    features: str,
    shard_rows: int,
    progress: Callable[[str], None],
) -> list[tuple[str, str]]:
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    ctx.raise_original_map_exception = True  # a MissingCorpusFileError, not a UserCodeException
    actors = min(len(todo), max(1, int(ray.available_resources().get("CPU", 1))))
    # Whole rounds of at most shard_rows per block, so no actor is left alone at the end.
    blocks = min(len(todo), actors * math.ceil(len(todo) / (actors * shard_rows)))
    fields = ("path", "source", "speaker", "emotion", "utt_id", "utterance_id")
    items = [
        {**{name: getattr(u, name) for name in fields},
         "has_spectrogram": "yes" if u.utterance_id in done else "no",
         "sets": ",".join(name for name in sets if u.utterance_id not in have[name])}
        for u in todo
    ]  # fmt: skip
    # from_items, not from_arrow: the latter runs a remote task per block for its metadata
    ds = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
        FeaturizeBlocks,
        fn_constructor_kwargs={
            "config": config,
            "labels": labels,
            "features": features,
            "sets": sets,
        },  # fmt: skip
        compute=ray.data.ActorPoolStrategy(size=actors),
        batch_size=None,
        batch_format="numpy",
    )
    rejects, seen, last = [], 0, time.perf_counter()
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            seen += len(batch["source"])
            rejects += [(s, r) for s, r in zip(batch["source"], batch["reject"], strict=True) if r]
            if time.perf_counter() - last > 2.0 or seen == len(todo):
                progress(f"featurize: {seen}/{len(todo)} files ({100 * seen // len(todo)}%)")
                last = time.perf_counter()
    except MissingCorpusFileError as err:
        # Ray's wrapper carries the worker's traceback, and Ray Data appends retry advice
        # after the message's first line: keep that line only.
        raise MissingCorpusFileError(str(getattr(err, "cause", err)).splitlines()[0]) from None
    return [(str(s), str(r)) for s, r in rejects]


def _rejects_csv(rejects: list[tuple[str, str]]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["path", "reason"])
    writer.writerows(rejects)
    return out.getvalue()
