"""attres-flow demo: the whole workflow on the built-in synthetic corpus, start to tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from attres.models import PAPER_MODELS
from featurize.config import FeatureConfig
from featurize.location import Location
from featurize.pipeline import FeaturizeSummary
from workflows.demo.synth import SynthConfig, synthesize_corpus
from workflows.grid.config import TrainConfig
from workflows.grid.pipeline import featurize_and_train
from workflows.results.plots import write_plots
from workflows.results.tables import render, table_rows


def run_demo(
    out: Path,
    speakers: int,
    utterances: int,
    image_size: int,
    epochs: int,
    batch_size: int,
    models: list[str],
    address: str | None = None,
    echo: Callable[[str], None] = print,
    display: str = "auto",
) -> list[str]:
    """Synthesize, featurize, train (paper protocol, seed 0) and tabulate under ``out``;
    returns the trials that failed. Everything resumes: a second run recomputes nothing."""
    out = out.resolve()
    corpus = out / "corpus"
    echo(f"demo: 1/4 synthesizing {speakers * utterances * 6} utterances into {corpus}")
    synthesize_corpus(corpus, SynthConfig(speakers=speakers, utterances_per_emotion=utterances))
    echo(f"demo: 2/4 featurizing to {image_size}x{image_size} spectrograms")
    names = "all" if models == list(PAPER_MODELS) else ",".join(models)

    def before_training(featurized: FeaturizeSummary) -> None:
        for line in featurized.lines():
            echo(line)
        echo(f"demo: 3/4 training {names} for {epochs} epochs (paper protocol, seed 0)")

    chain = featurize_and_train(
        corpus,
        out,
        FeatureConfig(image_size=image_size),
        TrainConfig(epochs=epochs, batch_size=batch_size),
        models,
        seeds=[0],
        address=address,
        before_training=before_training,
        display=display,
    )
    text = render(table_rows(chain.records), "markdown")
    Location(out / "tables.md").write(text)
    runs = out / "runs"
    plots = write_plots(chain.records, runs / "plots")
    echo("demo: 4/4 tables\n")
    echo(text)
    grid = chain.grid
    echo(
        f"demo: done; corpus {corpus}, features {out / 'features'}, runs {runs} "
        f"({grid.finished + grid.skipped} trials, {len(grid.failed)} failed), "
        f"tables {out / 'tables.md'}, {len(plots)} plots in {runs / 'plots'}"
    )
    return grid.failed
