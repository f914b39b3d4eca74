"""Benchmark: a base-size speech encoder over a corpus, the Ray Data pipeline against a plain
single-process loop.

    python benchmarks/bench_encoder.py CORPUS [--clips 60] [--placements 1x2,2x1]
                                              [--device cpu|cuda] [--gpus-per-actor 1]

The encoder is WavLM Base+ built from its configuration (the sizes of
``microsoft/wavlm-base-plus``'s config.json: 12 layers of 768, 3072 wide, 12 heads, the
7-layer convolutional front end with a group norm) with random weights: the same FLOPs as
the real weights, nothing downloaded. It is saved with save_pretrained into a temporary
folder, as a user's local model would be.

``--clips`` files are taken evenly across the corpus (every k-th in path order), their
spectrograms featurized first (off the clock) into a temporary FEATURES. Then, with a
local Ray instance up (its start timed apart), ``featurize.encoder_pipeline.embed_corpus``
embeds them once per ``--placements`` entry (ACTORSxCPUS, e.g. 1x2: one actor of 2 CPUs,
its torch on 2 threads), each time into a fresh encoder set: the time includes the actors'
start (importing torch and transformers, loading the weights). With Ray shut down, the
plain loop: one process, torch on every CPU, the encoder loaded off the clock, each file
read, prepared and embedded alone; and the same loop with the clips batched by length as
the actors batch them. Reports clips/s, clips/s per CPU, the ratio to the loop per CPU,
the peak memory of each Ray pass, and how far the pipeline's batched embeddings are from
the loop's one-clip-at-a-time ones.

``--device cuda`` runs the loop on the GPU and the actors on GPU shares: a placement
ACTORSxCPUSxGPUS (e.g. 2x1x0.5: two actors on one GPU), or ACTORSxCPUS with
``--gpus-per-actor`` each. Per CPU figures then mean little: compare clips/s.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from memory import PeakMemory

from featurize.audio import decode_audio, to_mono_at_rate
from featurize.config import FeatureConfig
from featurize.corpus import discover
from featurize.encoder_pipeline import EncoderRun, embed_corpus
from featurize.encoder_store import encoder_location, load_encoder_set
from featurize.encoders import resolve_encoder
from featurize.pipeline import run_featurize
from featurize.raysession import ensure_ray

# the fields of microsoft/wavlm-base-plus's config.json that size its compute
WAVLM_BASE_PLUS = dict(
    hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
    conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
    feat_extract_norm="group", do_stable_layer_norm=False, num_conv_pos_embeddings=128,
    num_conv_pos_embedding_groups=16, num_buckets=320, max_bucket_distance=800,
)  # fmt: skip


def save_base_encoder(folder: Path) -> Path:
    import torch
    import transformers as t

    torch.manual_seed(0)
    t.WavLMModel(t.WavLMConfig(**WAVLM_BASE_PLUS)).save_pretrained(folder)
    t.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(
        folder
    )
    return folder


def subset_manifest(corpus: Path, clips: int, out: Path) -> Path:
    """A manifest of ``clips`` files taken evenly across the corpus."""
    found = discover(corpus).utterances
    step = max(1, len(found) // clips)
    chosen = found[::step][:clips]
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "speaker", "emotion"])
        writer.writerows([(u.path, u.speaker, u.emotion) for u in chosen])
    return manifest


def loop(paths: list[str], embedder, batched: bool) -> tuple[float, np.ndarray]:
    """Wall seconds of reading, preparing and embedding every file in this process, and the
    embeddings in ``paths`` order."""
    start = time.perf_counter()
    prepared = []
    for path in paths:
        samples, rate = decode_audio(Path(path).read_bytes())
        signal = to_mono_at_rate(samples, rate, embedder.sample_rate)
        prepared.append((embedder.prepare(signal), len(signal)))
        if not batched:
            prepared[-1] = embedder.embed([prepared[-1][0]], [prepared[-1][1]])
    if batched:
        order = sorted(range(len(paths)), key=lambda i: prepared[i][1])
        values = embedder.embed([prepared[i][0] for i in order], [prepared[i][1] for i in order])
        out = np.empty_like(values)
        out[order] = values
    else:
        out = np.concatenate(prepared)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--clips", type=int, default=60)
    parser.add_argument("--placements", default="1x2,2x1", help="ACTORSxCPUS, comma-separated")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--gpus-per-actor", type=float, default=1.0)
    parser.add_argument("--skip-loop", action="store_true")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="bench-encoder-"))
    try:
        source = resolve_encoder("wavlm-base-plus", str(save_base_encoder(work / "encoder")))
        manifest = subset_manifest(args.corpus, args.clips, work)
        start = time.perf_counter()
        ensure_ray()
        ray_s = time.perf_counter() - start
        features = str(work / "features")
        found = discover(args.corpus, manifest)
        run_featurize(args.corpus, features, FeatureConfig(image_size=32), manifest=manifest,
                      progress=lambda _: None)  # fmt: skip
        n = len(found.utterances)
        seconds = sum(_duration(u.path) for u in found.utterances)
        print(
            f"{n} clips of {args.corpus} ({seconds:.0f} s of audio, {seconds / n:.2f} s a clip); "
            f"{cpus} CPUs, load {os.getloadavg()}; device {args.device}; ray start {ray_s:.1f} s"
        )
        ids = np.asarray(sorted(u.utterance_id for u in found.utterances))
        ray_values = None
        for placement in args.placements.split(","):
            actors, per, *share = (float(v) for v in placement.split("x"))
            shutil.rmtree(encoder_location(features, source.name), ignore_errors=True)
            gpus = (share or [args.gpus_per_actor])[0] if args.device == "cuda" else 0.0
            run = EncoderRun(gpus_per_actor=gpus, cpus_per_actor=per, actors=int(actors))
            marks: list[tuple[float, int]] = []  # (time, clips done) as progress reports
            with PeakMemory() as memory:
                start = time.perf_counter()
                summary = embed_corpus(
                    found.utterances, (), features, source, run,
                    lambda line, marks=marks: marks.append((time.perf_counter(), _done(line))),
                )  # fmt: skip
                took = time.perf_counter() - start
            assert summary.embedded == n and not summary.rejected
            ray_values = load_encoder_set(features, source.name, ids).values
            used = actors * per
            first = next((t, k) for t, k in marks if k > 0)  # the first batch back
            steady = (n - first[1]) / max(took + start - first[0], 1e-9)
            print(
                f"ray data {placement:>7}: {took:7.1f} s  {n / took:6.2f} clips/s  "
                f"{n / took / used:6.3f} clips/s/CPU  (actors' start included; first batch "
                f"back at {first[0] - start:.1f} s, {steady:.2f} clips/s after it; peak PSS "
                f"{memory.pss / 2**30:.2f} GiB)"
            )
        if args.skip_loop:
            return
        import ray
        import torch

        from featurize.embedding import Embedder

        ray.shutdown()
        torch.set_num_threads(cpus)
        embedder = Embedder(source, args.device)
        by_id = {u.utterance_id: u.path for u in found.utterances}
        paths = [by_id[uid] for uid in ids]
        loop(paths[:2], embedder, batched=False)  # first-call costs, off the clock
        for batched in (False, True):
            took, values = loop(paths, embedder, batched)
            what = "batched by length" if batched else "one clip at a time"
            print(
                f"plain loop, {what:>18}: {took:7.1f} s  {n / took:6.2f} clips/s  "
                f"{n / took / cpus:6.3f} clips/s/CPU  ({cpus} torch threads)"
            )
            if not batched and ray_values is not None:
                diff = np.abs(ray_values - values).max()
                print(
                    f"  the pipeline's batched embeddings against these: max |diff| {diff:.2e}, "
                    f"{diff / np.abs(values).max():.1e} of the largest value"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _done(line: str) -> int:
    """Clips done, from a progress line ("... : 12/60 clips"); 0 for other lines."""
    words = line.rsplit(": ", 1)[-1].split("/")
    return int(words[0]) if len(words) == 2 and words[0].isdigit() else 0


def _duration(path: str) -> float:
    import soundfile as sf

    return float(sf.info(path).duration)


if __name__ == "__main__":
    main()
