# Speech front end: 40 log mel filter banks and frame targets, stored as memory-mappable Arrow
# files, one rule per speech kind (its `dataset` constraint asks the registry, by the kind's role
# in the speech experiment or by its name); normalisation statistics from training data only.


# A corpus of the ASR role (TIMIT's layout): each official split apart, phone-state targets
rule asr_features:
    input:
        root=lambda w: PLAN.data.root(w.dataset),
        alignment=lambda w: PLAN.data.alignment_files(w.dataset),
    output:
        PATHS.split_features("{dataset}", "{split}"),
    log:
        PATHS.log("features/{dataset}_{split}"),
    benchmark:
        PATHS.benchmark("features/{dataset}_{split}")
    wildcard_constraints:
        dataset=PLAN.data.of_role("asr"),
    conda:
        "../../envs/torch.yaml"
    threads: 2
    params:
        features=PLAN.data.extraction(),
        frame_targets=lambda w: PLAN.data.task_reading(w.dataset)["frame_targets"],
        bad_utterances=lambda w: config["datasets"][w.dataset]["bad_utterances"],
        corpus=lambda w: PLAN.data.phone_corpus_content(w.dataset, w.split),
        version=STAGE_VERSIONS["features"],
    script:
        "../../scripts/asr_features.py"


# A corpus of the SER role (IEMOCAP's layout): every utterance in one file, emotion labels
rule ser_features:
    input:
        root=lambda w: PLAN.data.root(w.dataset),
    output:
        PATHS.utterance_features("{dataset}", 0)["features"],
    log:
        PATHS.log("features/{dataset}"),
    benchmark:
        PATHS.benchmark("features/{dataset}")
    wildcard_constraints:
        dataset=PLAN.data.of_role("ser"),
    conda:
        "../../envs/torch.yaml"
    threads: 2
    params:
        features=PLAN.data.extraction(),
        silence_threshold_db=lambda w: PLAN.data.task_reading(w.dataset)[
            "silence_threshold_db"
        ],
        bad_utterances=lambda w: config["datasets"][w.dataset]["bad_utterances"],
        corpus=lambda w: PLAN.data.content(w.dataset),
        version=STAGE_VERSIONS["features"],
    script:
        "../../scripts/ser_features.py"


# A Kaldi data directory of one's own (kind: kaldi): the same front end, frame labels of its
# utterance classes (and silence), leave-one-speaker-out folds over its speakers.
rule kaldi_dir_features:
    input:
        root=lambda w: PLAN.data.root(w.dataset),
    output:
        features=PATHS.utterance_features("{dataset}", 0)["features"],
        classes=PATHS.utterance_classes("{dataset}"),
    log:
        PATHS.log("features/{dataset}"),
    benchmark:
        PATHS.benchmark("features/{dataset}")
    wildcard_constraints:
        dataset=PLAN.data.of_kind("kaldi"),
    conda:
        "../../envs/torch.yaml"
    threads: 2
    params:
        features=PLAN.data.extraction(),
        silence_threshold_db=lambda w: PLAN.data.task_reading(w.dataset)[
            "silence_threshold_db"
        ],
        dataset=lambda w: PLAN.data.kaldi_dir(w.dataset),
        corpus=lambda w: PLAN.data.content(w.dataset),
        version=STAGE_VERSIONS["features"],
    script:
        "../../scripts/kaldi_dir_features.py"


# Statistics of the training split (official splits) or of a fold's training speakers
rule train_stats:
    input:
        PATHS.phone_features("{dataset}")["train"],
    output:
        PATHS.phone_features("{dataset}")["stats"],
    log:
        PATHS.log("features/{dataset}_stats"),
    wildcard_constraints:
        dataset=PLAN.data.of_role("asr"),
    conda:
        "../../envs/torch.yaml"
    params:
        speakers=None,
        version=STAGE_VERSIONS["features"],
    script:
        "../../scripts/feature_stats.py"


rule fold_stats:
    input:
        PATHS.utterance_features("{dataset}", "{fold}")["features"],
    output:
        PATHS.utterance_features("{dataset}", "{fold}")["stats"],
    log:
        PATHS.log("features/{dataset}_stats_fold{fold}"),
    wildcard_constraints:
        dataset=PLAN.data.classifying_utterances(),
    conda:
        "../../envs/torch.yaml"
    params:
        speakers=lambda w: PLAN.data.fold_training_speakers(w.dataset, w.fold),
        version=STAGE_VERSIONS["features"],
    script:
        "../../scripts/feature_stats.py"


rule kaldi_data:
    """Not part of `all`: ask for results/features/<corpus>/kaldi/<split>/wav.scp (or any file
    of the folder) to get a Kaldi data directory of the features."""
    input:
        features=PATHS.split_features("{corpus}", "{split}"),
        corpus=lambda w: PLAN.data.root_input(w.corpus),
    output:
        **PATHS.kaldi_dir("{corpus}", "{split}"),
    log:
        PATHS.log("features/kaldi_{corpus}_{split}"),
    wildcard_constraints:
        corpus=PLAN.data.of_role("asr", "ser"),
        split="train|dev|test|all",
    conda:
        "../../envs/torch.yaml"
    params:
        root=lambda w: PLAN.data.root(w.corpus),
        version=STAGE_VERSIONS["features"],
    script:
        "../../scripts/kaldi_features.py"
