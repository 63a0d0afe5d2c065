"""Where each file of the output folder lives. Names of ``outdir`` and of the config's datasets
and jobs only: a rule's output and every input that reads it are the same string, written here
once. A pass or a job given as ``"{targets_pass}"`` or ``"{job}"`` is a wildcard of a rule."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paths:
    out: str  # the config's outdir

    @property
    def models(self) -> str:
        return f"{self.out}/models"

    def corpus(self, dataset: str) -> str:
        """A demo corpus, generated in its real on-disk format."""
        return f"{self.out}/corpora/{dataset}"

    def image_folder(self, dataset: str) -> str:
        """The folder of an image dataset's prepared splits."""
        return f"{self.out}/data/{dataset}"

    def image_data(self, dataset: str) -> dict[str, str]:
        """An image dataset's prepared splits and training statistics."""
        folder = self.image_folder(dataset)
        return {
            "train": f"{folder}/train.arrow",
            "validation": f"{folder}/validation.arrow",
            "test": f"{folder}/test.arrow",
            "stats": f"{folder}/stats.json",
        }

    def imagefolder_outputs(self, dataset: str) -> dict[str, str]:
        """An image folder's prepared splits, with its class names and the images it left out."""
        folder = self.image_folder(dataset)
        return {**self.image_data(dataset), "classes": f"{folder}/classes.json",
                "bad_images": f"{folder}/bad_images.txt"}

    def features(self, dataset: str) -> str:
        """The folder of a speech dataset's features."""
        return f"{self.out}/features/{dataset}"

    def split_features(self, dataset: str, split: str) -> str:
        """One split's features (a corpus whose official splits are extracted apart)."""
        return f"{self.features(dataset)}/{split}.arrow"

    def utterance_features(self, dataset: str, fold: int | str) -> dict[str, str]:
        """An utterance-classification corpus: one feature file, statistics per fold."""
        return {
            "features": f"{self.features(dataset)}/all.arrow",
            "stats": f"{self.features(dataset)}/stats/fold{fold}.json",
        }

    def kaldi_dir(self, dataset: str, split: str) -> dict[str, str]:
        """A Kaldi data directory of a split's features (asked for by name, never by `all`)."""
        folder = f"{self.features(dataset)}/kaldi/{split}"
        return {"ark": f"{folder}/feats.ark", "scp": f"{folder}/feats.scp", "utt2spk": f"{folder}/utt2spk",
                "spk2utt": f"{folder}/spk2utt", "text": f"{folder}/text", "wav": f"{folder}/wav.scp"}

    def utterance_classes(self, dataset: str) -> str:
        """The class labels of a Kaldi data directory, in label order."""
        return f"{self.features(dataset)}/classes.json"

    def realigned(self, dataset: str, targets_pass: int | str) -> str:
        """The folder of one realignment pass of a phone-labelled corpus (pass p > 0)."""
        return f"{self.features(dataset)}/realigned/pass{targets_pass}"

    def phone_features(self, dataset: str, targets_pass: int | str = 0) -> dict[str, str]:
        """A phone-labelled corpus's official splits with the targets of a realignment pass (0: as
        extracted). Realignment replaces the targets of train and dev; test keeps the labelled
        ones (decoding never reads them); the statistics are the extracted train split's."""
        aligned = self.realigned(dataset, targets_pass) if targets_pass else self.features(dataset)
        return {
            "train": f"{aligned}/train.arrow",
            "dev": f"{aligned}/dev.arrow",
            "test": self.split_features(dataset, "test"),
            "stats": f"{self.features(dataset)}/stats/train.json",
        }

    def realignment_outputs(self, dataset: str, targets_pass: int | str) -> dict[str, str]:
        """What a realignment pass writes: train and dev with the new targets, their alignments
        as Kaldi archives, and its report."""
        folder = self.realigned(dataset, targets_pass)
        outputs = {"train": f"{folder}/train.arrow", "dev": f"{folder}/dev.arrow"}
        for split in ("train", "dev"):
            outputs[f"{split}_ali"] = f"{folder}/ali_{split}.ark"
            outputs[f"{split}_scp"] = f"{folder}/ali_{split}.scp"
        return {**outputs, "report": f"{folder}/report.json"}

    def hmm(self, dataset: str, targets_pass: int | str = 0) -> str:
        """The HMM estimated on the training targets of a pass (0: as extracted)."""
        folder = self.realigned(dataset, targets_pass) if targets_pass else self.features(dataset)
        return f"{folder}/hmm.json"

    def model(self, folder: str) -> str:
        return f"{self.models}/{folder}/model.pt"

    def metrics(self, folder: str) -> str:
        """A training job's own metrics (its history and cost, its scores unless decoded)."""
        return f"{self.models}/{folder}/metrics.json"

    def history(self, folder: str) -> str:
        """A job's training curves as CSV, written as training goes (a log: a missing one re-runs nothing)."""
        return f"{self.models}/{folder}/history.csv"

    def tensorboard(self, folder: str) -> str:
        return f"{self.out}/runs/{folder}"

    def decoded(self, folder: str) -> str:
        """The folder of a model's decode (ASR targets): its metrics and per-split files."""
        return f"{self.models}/{folder}/decode"

    def training_outputs(self, folder: str, posteriors: bool = False) -> dict[str, str]:
        """Model and metrics; an ASR-target model also writes the log-posteriors its decode reads."""
        outputs = {"model": self.model(folder), "metrics": self.metrics(folder)}
        return {**outputs, **self.posteriors(folder)} if posteriors else outputs

    def posteriors(self, folder: str) -> dict[str, str]:
        """The dev and test log-posteriors an ASR-target model writes for its decode."""
        return {f"{split}_{ext}": f"{self.models}/{folder}/posteriors/{split}.{ext}"
                for split in ("dev", "test") for ext in ("ark", "scp")}

    def decode_outputs(self, folder: str) -> dict[str, str]:
        """A decode's scores, and per split its hypotheses, references, PER, per-speaker PER and
        alignment of hypothesis to reference."""
        decoded = self.decoded(folder)
        outputs = {"metrics": f"{decoded}/metrics.json"}
        for split in ("dev", "test"):
            outputs.update({f"{split}_hyp": f"{decoded}/{split}/hyp.txt", f"{split}_ref": f"{decoded}/{split}/ref.txt",
                            f"{split}_per": f"{decoded}/{split}/per.json",
                            f"{split}_speakers": f"{decoded}/{split}/per_speaker.tsv",
                            f"{split}_align": f"{decoded}/{split}/align.txt"})
        return outputs

    def figure(self, name: str, ext: str = "png") -> str:
        return f"{self.out}/figures/{name}.{ext}"

    def table(self, file: str) -> str:
        return f"{self.out}/tables/{file}"

    def log(self, name: str) -> str:
        return f"{self.out}/logs/{name}.log"

    def benchmark(self, name: str) -> str:
        return f"{self.out}/benchmarks/{name}.tsv"
