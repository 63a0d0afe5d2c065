# Speech front end: 40 log mel filter banks and frame targets for TIMIT, IEMOCAP and Kaldi data
# directories of one's own, stored as
# memory-mappable Arrow files; normalisation statistics from training data only.


rule timit_features:
    input:
        root=dataset_root("timit"),
        alignment=timit_alignment,
    output:
        f"{OUT}/features/timit/{{split}}.arrow",
    log:
        f"{OUT}/logs/features/timit_{{split}}.log",
    benchmark:
        f"{OUT}/benchmarks/features/timit_{{split}}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    params:
        features=extraction_params(),
        frame_targets=speech_task("timit")["frame_targets"],
        bad_utterances=config["datasets"]["timit"]["bad_utterances"],
        corpus=lambda w: timit_content(w.split),
        version=STAGE_VERSIONS["features"],
    script:
        "../../scripts/timit_features.py"


rule iemocap_features:
    input:
        root=dataset_root("iemocap"),
    output:
        f"{OUT}/features/iemocap/all.arrow",
    log:
        f"{OUT}/logs/features/iemocap.log",
    benchmark:
        f"{OUT}/benchmarks/features/iemocap.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    params:
        features=extraction_params(),
        silence_threshold_db=speech_task("iemocap")["silence_threshold_db"],
        bad_utterances=config["datasets"]["iemocap"]["bad_utterances"],
        corpus=lambda w: corpus_content("iemocap"),
        version=STAGE_VERSIONS["features"],
    script:
        "../../scripts/iemocap_features.py"


# A Kaldi data directory of one's own (kind: kaldi): the same front end, frame labels of its
# utterance classes (and silence), leave-one-speaker-out folds over its speakers.
rule kaldi_dir_features:
    input:
        root=lambda w: dataset_root(w.dataset),
    output:
        features=f"{OUT}/features/{{dataset}}/all.arrow",
        classes=f"{OUT}/features/{{dataset}}/classes.json",
    log:
        f"{OUT}/logs/features/{{dataset}}.log",
    benchmark:
        f"{OUT}/benchmarks/features/{{dataset}}.tsv"
    wildcard_constraints:
        dataset=datasets_of_kind("kaldi"),
    conda:
        "../../envs/torch.yaml"
    threads: 2
    params:
        features=extraction_params(),
        silence_threshold_db=lambda w: dataset_task(w.dataset)["silence_threshold_db"],
        dataset=kaldi_dir_params,
        corpus=lambda w: corpus_content(w.dataset),
        version=STAGE_VERSIONS["features"],
    script:
        "../../scripts/kaldi_dir_features.py"


rule kaldi_dir_stats:
    input:
        f"{OUT}/features/{{dataset}}/all.arrow",
    output:
        f"{OUT}/features/{{dataset}}/stats/fold{{fold}}.json",
    log:
        f"{OUT}/logs/features/{{dataset}}_stats_fold{{fold}}.log",
    wildcard_constraints:
        dataset=datasets_of_kind("kaldi"),
    conda:
        "../../envs/torch.yaml"
    params:
        speakers=lambda w: fold_speakers(dataset_task(w.dataset), w.fold),
        version=STAGE_VERSIONS["features"],
    script:
        "../../scripts/feature_stats.py"


rule timit_stats:
    input:
        f"{OUT}/features/timit/train.arrow",
    output:
        f"{OUT}/features/timit/stats/train.json",
    log:
        f"{OUT}/logs/features/timit_stats.log",
    conda:
        "../../envs/torch.yaml"
    params:
        speakers=None,
        version=STAGE_VERSIONS["features"],
    script:
        "../../scripts/feature_stats.py"


rule iemocap_stats:
    input:
        f"{OUT}/features/iemocap/all.arrow",
    output:
        f"{OUT}/features/iemocap/stats/fold{{fold}}.json",
    log:
        f"{OUT}/logs/features/iemocap_stats_fold{{fold}}.log",
    conda:
        "../../envs/torch.yaml"
    params:
        speakers=lambda w: ser_fold_speakers(w.fold),
        version=STAGE_VERSIONS["features"],
    script:
        "../../scripts/feature_stats.py"


rule kaldi_data:
    """Not part of `all`: ask for results/features/<corpus>/kaldi/<split>/wav.scp (or any file
    of the folder) to get a Kaldi data directory of the features."""
    input:
        features=f"{OUT}/features/{{corpus}}/{{split}}.arrow",
        corpus=lambda w: dataset_input(w.corpus),
    output:
        ark=f"{OUT}/features/{{corpus}}/kaldi/{{split}}/feats.ark",
        scp=f"{OUT}/features/{{corpus}}/kaldi/{{split}}/feats.scp",
        utt2spk=f"{OUT}/features/{{corpus}}/kaldi/{{split}}/utt2spk",
        spk2utt=f"{OUT}/features/{{corpus}}/kaldi/{{split}}/spk2utt",
        text=f"{OUT}/features/{{corpus}}/kaldi/{{split}}/text",
        wav=f"{OUT}/features/{{corpus}}/kaldi/{{split}}/wav.scp",
    log:
        f"{OUT}/logs/features/kaldi_{{corpus}}_{{split}}.log",
    wildcard_constraints:
        corpus="timit|iemocap",
        split="train|dev|test|all",
    conda:
        "../../envs/torch.yaml"
    params:
        root=lambda w: dataset_root(w.corpus),
        version=STAGE_VERSIONS["features"],
    script:
        "../../scripts/kaldi_features.py"
