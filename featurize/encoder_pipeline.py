"""The Ray Data pipeline of an encoder set: the clips of FEATURES -> embeddings -> shards.

The clips, sorted by length on the driver, stream in batches of neighbours in length to a
pool of long-lived actors, each holding the encoder once (on a GPU share when the cluster
has GPUs: ``num_gpus`` per actor, fractions pack several actors on one GPU, so one reads
audio while another runs the encoder). An actor decodes its batch, embeds it in forward
passes of similar lengths (``featurize.embedding``) and writes it as one shard straight
from the actor; only a status row per clip returns to the driver, so memory is bounded by
the batches in flight. A clip already embedded is not read again (resumable).
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from featurize.audio import BadAudioError, decode_audio, perturb_speed, to_mono_at_rate
from featurize.corpus import MissingCorpusFileError, Utterance
from featurize.encoder_store import encoder_ids, prepare_encoder, write_encoder_shard
from featurize.encoders import EncoderError, EncoderSource
from featurize.store import existing_ids

SPEED = "~speed"  # a speed-perturbed row's id: the recording's, "~speed" and the factor


@dataclass(frozen=True)
class EncoderRun:
    """Where and how an encoder set is computed; nothing here changes a value beyond float
    rounding (fp32 on CPUs, bf16 or fp16 on GPUs)."""

    # GPU share per actor: None = one whole GPU when the cluster has GPUs, else none;
    # fractions (0.5) place several actors on one GPU
    gpus_per_actor: float | None = None
    # CPUs per actor (its torch threads on a CPU actor): None = 1 beside a GPU, else all
    # of the cluster's CPUs over the actors
    cpus_per_actor: float | None = None
    actors: int | None = None  # None: as many as the GPU shares, or one per 2 CPUs
    clips_per_batch: int = 32  # clips handed to an actor at once: one shard
    batch_seconds: float = 160.0  # padded audio per forward pass (activation memory)

    def __post_init__(self) -> None:
        if self.gpus_per_actor is not None and not 0 <= self.gpus_per_actor <= 1:
            raise ValueError(f"gpus_per_actor must lie in [0, 1], got {self.gpus_per_actor}")
        if self.cpus_per_actor is not None and self.cpus_per_actor <= 0:
            raise ValueError(f"cpus_per_actor must be > 0, got {self.cpus_per_actor}")
        if self.actors is not None and self.actors < 1:
            raise ValueError(f"actors must be >= 1, got {self.actors}")
        if self.clips_per_batch < 1 or self.batch_seconds <= 0:
            raise ValueError("clips_per_batch must be >= 1 and batch_seconds > 0")

    def placement(self, resources: dict[str, float]) -> tuple[int, float, float]:
        """(actors, CPUs each, GPUs each) on a cluster of ``resources``."""
        gpus_total, cpus_total = resources.get("GPU", 0.0), resources.get("CPU", 1.0)
        gpus = (1.0 if gpus_total else 0.0) if self.gpus_per_actor is None else self.gpus_per_actor
        if gpus and not gpus_total:
            raise EncoderError(f"{gpus:g} GPU per encoder actor, and the cluster has no GPU")
        if gpus:
            actors = self.actors or max(1, math.floor(gpus_total / gpus + 1e-9))
            cpus = self.cpus_per_actor or 1.0
        else:
            actors = self.actors or max(1, int(cpus_total // (self.cpus_per_actor or 2)))
            cpus = self.cpus_per_actor or max(1.0, cpus_total // actors)
        return actors, cpus, gpus


@dataclass
class EncoderSummary:
    """One set's part of a featurize run."""

    name: str
    model: str
    revision: str
    embedded: int  # clips embedded by this run
    skipped: int  # embedded by an earlier run
    rejected: list[tuple[str, str]]  # (path, reason)

    def line(self) -> str:
        return (
            f"  encoder {self.name} ({self.model} @ {self.revision[:12]}): {self.embedded} "
            f"clips embedded, {self.skipped} already, {len(self.rejected)} rejected"
        )


def clip_items(
    utterances: tuple[Utterance, ...], speeds: tuple[float, ...], rows: set[str], done: set[str]
) -> list[dict[str, Any]]:
    """The clips of FEATURES (``rows``; a speed-perturbed copy once per factor) not ``done``,
    sorted by length (read from each file's header) so batches are neighbours in length."""
    import soundfile as sf

    items = []
    for u in utterances:
        for speed in (1.0, *speeds):
            uid = u.utterance_id + (f"{SPEED}{speed:g}" if speed != 1 else "")
            if uid in rows and uid not in done:
                items.append(
                    {"path": u.path, "source": u.source, "utterance_id": uid, "speed": speed}
                )
    for item in items:
        try:
            item["seconds"] = sf.info(item["path"]).duration / item["speed"]
        except Exception:  # unreadable here: the actor rejects it with its reason
            item["seconds"] = 0.0
    return sorted(items, key=lambda item: (item["seconds"], item["utterance_id"]))


class EmbedClips:
    """Ray Data map_batches callable: embed a batch of clips with the encoder this actor
    loaded once, write the good ones as one shard, return each clip's reject reason."""

    def __init__(
        self,
        source: EncoderSource,
        settings: dict[str, Any],
        features: str,
        device: str,
        threads: int,
        batch_seconds: float,
    ) -> None:
        import torch

        from featurize.embedding import Embedder

        torch.set_num_threads(threads)
        self.embedder = Embedder(source, device, batch_seconds)
        self.settings, self.features = settings, features

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [{k: batch[k][i] for k in batch} for i in range(len(batch["utterance_id"]))]
        reasons, inputs, samples, ids = [], [], [], []
        for row in rows:
            try:
                signal = self.signal(row)
                x = self.embedder.prepare(signal)
            except (BadAudioError, OSError, ValueError) as err:
                reasons.append(f"encoder {self.settings['encoder']}: {err}")
                continue
            except MissingCorpusFileError:
                raise
            except Exception as err:  # a decoder bug must not take the other clips down
                reasons.append(f"encoder {self.settings['encoder']}: unexpected {err!r}")
                continue
            reasons.append("")
            inputs.append(x)
            samples.append(len(signal))
            ids.append(str(row["utterance_id"]))
        if ids:
            values = self.embedder.embed(inputs, samples)
            write_encoder_shard(self.features, self.settings, ids, values)
        return {"source": batch["source"], "reject": np.asarray(reasons, dtype=object)}

    def signal(self, row: dict[str, Any]) -> np.ndarray:
        """The clip as the encoder hears it: mono at its rate, speed-perturbed if a copy."""
        try:
            with open(str(row["path"]), "rb") as f:
                data = f.read()
        except FileNotFoundError as err:
            raise MissingCorpusFileError(
                f"corpus file {row['path']} exists on the driver but not on node "
                f"{platform.node()}: the corpus must be on a shared filesystem that every "
                "node sees at the same path"
            ) from err
        samples, rate = decode_audio(data)
        signal = to_mono_at_rate(samples, rate, self.embedder.sample_rate)
        speed = float(row["speed"])
        return signal if speed == 1 else perturb_speed(signal, speed)


def embed_corpus(
    utterances: tuple[Utterance, ...],
    speeds: tuple[float, ...],
    features: str,
    source: EncoderSource,
    run: EncoderRun,
    progress: Callable[[str], None] = print,
) -> EncoderSummary:
    """Embed every clip of FEATURES that the set lacks (Ray must be up)."""
    import ray

    settings = prepare_encoder(features, source)
    rows, done = existing_ids(features), encoder_ids(features, source.name)
    items = clip_items(utterances, speeds, rows, done)
    summary = EncoderSummary(source.name, source.model, source.revision, 0, len(done & rows), [])
    if not items:
        return summary
    actors, cpus, gpus = run.placement(ray.cluster_resources())
    progress(
        f"featurize: encoder {source.name}: {len(items)} clips to embed on {actors} actor(s) "
        f"of {cpus:g} CPU{f' and {gpus:g} GPU' if gpus else ''}"
    )
    placed = (actors, cpus, gpus)
    summary.rejected = _embed_on_ray(items, source, settings, features, run, placed, progress)
    summary.embedded = len(items) - len(summary.rejected)
    return summary


def _embed_on_ray(
    items: list[dict[str, Any]],
    source: EncoderSource,
    settings: dict[str, Any],
    features: str,
    run: EncoderRun,
    placed: tuple[int, float, float],
    progress: Callable[[str], None],
) -> list[tuple[str, str]]:
    import ray.data

    actors, cpus, gpus = placed
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    ctx.raise_original_map_exception = True
    blocks = max(1, math.ceil(len(items) / run.clips_per_batch))
    ds = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
        EmbedClips,
        fn_constructor_kwargs={
            "source": source,
            "settings": settings,
            "features": features,
            "device": "cuda" if gpus else "cpu",
            "threads": max(1, int(cpus)),
            "batch_seconds": run.batch_seconds,
        },  # fmt: skip
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus,
        num_gpus=gpus,
        batch_size=run.clips_per_batch,
        batch_format="numpy",
    )
    rejects, seen, last = [], 0, time.perf_counter()
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            seen += len(batch["source"])
            pairs = zip(batch["source"], batch["reject"], strict=True)
            rejects += [(str(path), str(reason)) for path, reason in pairs if reason]
            if time.perf_counter() - last > 2.0 or seen == len(items):
                progress(f"featurize: encoder {source.name}: {seen}/{len(items)} clips")
                last = time.perf_counter()
    except MissingCorpusFileError as err:
        raise MissingCorpusFileError(str(getattr(err, "cause", err)).splitlines()[0]) from None
    return rejects
