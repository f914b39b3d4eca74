"""The ``attres-flow`` command line. Thin: parses options, calls the pipeline, prints results.

Ray, torch and the featurize stack are imported inside the commands so ``--help`` is instant.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Speech emotion recognition at scale: featurize a corpus, train the paper's models, "
    "print the paper's tables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

Address = Annotated[
    str | None,
    typer.Option(help="Ray cluster to join (e.g. 127.0.0.1:6379); default: start a local one."),
]


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the corpus into.")],
    speakers: Annotated[int, typer.Option(min=1, help="Number of speakers.")] = 4,
    utterances: Annotated[
        int, typer.Option(min=1, help="Sentences per speaker, each read in all six emotions.")
    ] = 20,
    min_duration: Annotated[float, typer.Option(min=0.1, help="Shortest clip, seconds.")] = 1.0,
    max_duration: Annotated[float, typer.Option(min=0.1, help="Longest clip, seconds.")] = 2.5,
    sample_rate: Annotated[int, typer.Option(min=8000, help="Sample rate, Hz.")] = 16000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Processes to generate with.")] = 1,
) -> None:
    """Write a synthetic emotional-speech corpus in the CASIA layout (<speaker>/<emotion>/*.wav)."""
    from featurize.synth import SynthConfig, synthesize_corpus

    if min_duration > max_duration:
        fail(f"--min-duration {min_duration} is above --max-duration {max_duration}")
    config = SynthConfig(
        speakers=speakers,
        utterances_per_emotion=utterances,
        min_duration_s=min_duration,
        max_duration_s=max_duration,
        sample_rate=sample_rate,
        seed=seed,
    )
    manifest = synthesize_corpus(out_dir, config, workers=workers)
    typer.echo(f"synth: wrote {speakers * utterances * 6} utterances; manifest {manifest}")


@app.command()
def featurize(
    corpus: Annotated[Path, typer.Argument(help="Corpus root (<speaker>/<emotion>/<file>.wav).")],
    out: Annotated[str, typer.Option("--out", help="FEATURES folder or URI (s3://, gs://).")],
    manifest: Annotated[
        Path | None,
        typer.Option(help="CSV with path, speaker, emotion (paths relative to the CSV)."),
    ] = None,
    image_size: Annotated[int, typer.Option(min=8, help="Spectrogram image side.")] = 128,
    sample_rate: Annotated[int, typer.Option(help="Analysis sample rate, Hz.")] = 16000,
    frame_ms: Annotated[float, typer.Option(help="Frame length, ms.")] = 25.0,
    hop_ms: Annotated[float, typer.Option(help="Frame shift, ms.")] = 10.0,
    n_fft: Annotated[int, typer.Option(help="FFT points.")] = 512,
    window: Annotated[str, typer.Option(help="hamming, hann or rectangular.")] = "hamming",
    shard_rows: Annotated[int, typer.Option(min=1, help="Rows per Parquet shard (at most).")] = 256,
    address: Address = None,
) -> None:
    """Featurize a corpus into Parquet spectrogram shards with Ray Data (resumable)."""
    from featurize.config import FeatureConfig
    from featurize.corpus import CorpusError
    from featurize.pipeline import NothingFeaturizedError, run_featurize
    from featurize.store import FeatureStoreError

    try:
        config = FeatureConfig(
            sample_rate=sample_rate,
            frame_ms=frame_ms,
            hop_ms=hop_ms,
            n_fft=n_fft,
            window=window,
            image_size=image_size,
        )
    except ValueError as err:
        fail(f"feature settings: {err}")
    try:
        summary = run_featurize(
            corpus, out, config, manifest=manifest, address=address, shard_rows=shard_rows
        )
    except (CorpusError, FeatureStoreError, NothingFeaturizedError) as err:
        fail(str(err))
    print_featurize_summary(summary)


def print_featurize_summary(summary) -> None:
    typer.echo(
        f"featurize: {summary.files_seen} files seen, {summary.featurized} featurized, "
        f"{summary.skipped} skipped (already done), {summary.rejected} rejected "
        f"in {summary.elapsed_s:.1f} s -> {summary.features}"
    )
    for path, reason in summary.rejects:
        typer.echo(f"  rejected {path}: {reason}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
