"""What the tables and figures depend on besides the results table: each figure's title, the
l_c values and networks it draws, the run's settings its caption describes, and the order of
the experiments (the paper's two, then the user's own by name, never the config's order)."""

from __future__ import annotations

from gradual_transfer.grid import SPEECH_EXPERIMENT, studies, sweep, transferability_settings
from gradual_transfer.params import canonical
from gradual_transfer.plan.datasets import one_of
from gradual_transfer.plan.training import Training
from gradual_transfer.report import describe_run

TITLES = {
    "images": "Figure 1: gradual transfer between image datasets",
    "speech": "Figure 2: gradual transfer between speech tasks",
    "transferability": "Figure 3: transferability between tasks (test split)",
    "curves": "Training curves: validation score per epoch",
    "estimates": "Transferability estimates against the measured curves (test split, copy)",
}


class Report:
    def __init__(self, config: dict, training: Training, demo: bool) -> None:
        self.config, self.training, self.demo = config, training, demo
        # the studies of the user's own: every enabled experiment but the paper's two, one figure each
        self.own_experiments = sorted(name for name in studies(config) if name != "images")
        self.experiments = ["images", SPEECH_EXPERIMENT] + self.own_experiments
        self.trained = {job.experiment for job in training.jobs.values()}  # the experiments with jobs

    def own_experiment(self) -> str:
        """A constraint for ``{experiment}``: the studies of the user's own."""
        return one_of(self.own_experiments)

    def lc_sets(self, experiment: str) -> dict:
        """The l_c values of the experiment's architectures (only those: a figure does not
        depend on architectures it does not draw)."""
        archs = self.config["experiments"][experiment]["architectures"]
        return canonical({name: sweep(self.config, name) for name in archs})

    def figure_title(self, figure: str) -> str:
        title = TITLES.get(figure, f"Study {figure}: gradual transfer between its tasks")
        return title + (" (DEMO DATA)" if self.demo else "")

    def settings(self, experiments: list[str]) -> str:
        """The captions' description of what the run trained (architectures, tasks, l_c,
        epochs, seeds, folds, families, controls), for the experiments among these that trained."""
        return "\n\n".join(f"{name.capitalize()}: {describe_run(self.config, name, self.demo)}"
                           for name in experiments if name in self.trained)

    def task_metrics(self) -> dict:
        """The metric of every task (the training curves' axes)."""
        return canonical({task: entry["metric"] for task, entry in self.config["tasks"].items()})

    def transferability(self) -> dict:
        """What the transferability table depends on (:func:`gradual_transfer.grid.transferability_settings`)."""
        return transferability_settings(self.config)
