# Speech experiment: ASR (TIMIT, hybrid ConvNet-HMM) and SER (IEMOCAP, 8 folds), primaries and
# gradual transfer in both directions; ASR-target models are decoded on CPU.

SPEECH_TRAINING = dict(gpu=1, mem_mb=16000, runtime=12 * 60)


rule asr_primary:
    input:
        **timit_inputs(),
    output:
        model=f"{OUT}/models/{{arch}}/primary/{ASR}/fold0/model.pt",
        metrics=f"{OUT}/models/{{arch}}/primary/{ASR}/fold0/metrics.json",
        dev_ark=f"{OUT}/models/{{arch}}/primary/{ASR}/fold0/posteriors/dev.ark",
        dev_scp=f"{OUT}/models/{{arch}}/primary/{ASR}/fold0/posteriors/dev.scp",
        test_ark=f"{OUT}/models/{{arch}}/primary/{ASR}/fold0/posteriors/test.ark",
        test_scp=f"{OUT}/models/{{arch}}/primary/{ASR}/fold0/posteriors/test.scp",
    log:
        f"{OUT}/logs/models/{{arch}}/primary/{ASR}.log",
    benchmark:
        f"{OUT}/benchmarks/models/{{arch}}/primary/{ASR}.tsv"
    wildcard_constraints:
        arch=choice(SPEECH_ARCHS),
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        **SPEECH_TRAINING,
    params:
        arch=architecture,
        speech=speech_params(ASR, "training"),
    script:
        "../../scripts/train_speech.py"


rule ser_primary:
    input:
        unpack(iemocap_inputs),
    output:
        model=f"{OUT}/models/{{arch}}/primary/{SER}/fold{{fold}}/model.pt",
        metrics=f"{OUT}/models/{{arch}}/primary/{SER}/fold{{fold}}/metrics.json",
    log:
        f"{OUT}/logs/models/{{arch}}/primary/{SER}_fold{{fold}}.log",
    benchmark:
        f"{OUT}/benchmarks/models/{{arch}}/primary/{SER}_fold{{fold}}.tsv"
    wildcard_constraints:
        arch=choice(SPEECH_ARCHS),
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        **SPEECH_TRAINING,
    params:
        arch=architecture,
        speech=speech_params(SER, "training"),
    script:
        "../../scripts/train_speech.py"


rule asr_to_ser:
    input:
        unpack(iemocap_inputs),
        source=f"{OUT}/models/{{arch}}/primary/{ASR}/fold0/model.pt",
    output:
        model=f"{OUT}/models/{{arch}}/transfer/{ASR}-to-{SER}/fold{{fold}}/lc{{lc}}/model.pt",
        metrics=f"{OUT}/models/{{arch}}/transfer/{ASR}-to-{SER}/fold{{fold}}/lc{{lc}}/metrics.json",
    log:
        f"{OUT}/logs/models/{{arch}}/transfer/{ASR}-to-{SER}/fold{{fold}}_lc{{lc}}.log",
    benchmark:
        f"{OUT}/benchmarks/models/{{arch}}/transfer/{ASR}-to-{SER}/fold{{fold}}_lc{{lc}}.tsv"
    wildcard_constraints:
        arch=choice(SPEECH_ARCHS),
        lc=r"\d+",
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        **SPEECH_TRAINING,
    params:
        arch=architecture,
        speech=speech_params(SER, "finetune"),
        lc=lambda w: int(w.lc),
    script:
        "../../scripts/train_speech.py"


rule ser_to_asr:
    input:
        **timit_inputs(),
        source=f"{OUT}/models/{{arch}}/primary/{SER}/fold{{fold}}/model.pt",
    output:
        model=f"{OUT}/models/{{arch}}/transfer/{SER}-to-{ASR}/fold{{fold}}/lc{{lc}}/model.pt",
        metrics=f"{OUT}/models/{{arch}}/transfer/{SER}-to-{ASR}/fold{{fold}}/lc{{lc}}/metrics.json",
        dev_ark=f"{OUT}/models/{{arch}}/transfer/{SER}-to-{ASR}/fold{{fold}}/lc{{lc}}/posteriors/dev.ark",
        dev_scp=f"{OUT}/models/{{arch}}/transfer/{SER}-to-{ASR}/fold{{fold}}/lc{{lc}}/posteriors/dev.scp",
        test_ark=f"{OUT}/models/{{arch}}/transfer/{SER}-to-{ASR}/fold{{fold}}/lc{{lc}}/posteriors/test.ark",
        test_scp=f"{OUT}/models/{{arch}}/transfer/{SER}-to-{ASR}/fold{{fold}}/lc{{lc}}/posteriors/test.scp",
    log:
        f"{OUT}/logs/models/{{arch}}/transfer/{SER}-to-{ASR}/fold{{fold}}_lc{{lc}}.log",
    benchmark:
        f"{OUT}/benchmarks/models/{{arch}}/transfer/{SER}-to-{ASR}/fold{{fold}}_lc{{lc}}.tsv"
    wildcard_constraints:
        arch=choice(SPEECH_ARCHS),
        lc=r"\d+",
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        **SPEECH_TRAINING,
    params:
        arch=architecture,
        speech=speech_params(ASR, "finetune"),
        lc=lambda w: int(w.lc),
    script:
        "../../scripts/train_speech.py"


rule hmm_model:
    input:
        f"{OUT}/features/timit/train.arrow",
    output:
        f"{OUT}/features/timit/hmm.json",
    log:
        f"{OUT}/logs/features/hmm.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../../scripts/hmm_model.py"


rule decode_asr:
    input:
        hmm=f"{OUT}/features/timit/hmm.json",
        dev_ref=f"{OUT}/features/timit/dev.arrow",
        test_ref=f"{OUT}/features/timit/test.arrow",
        dev_scp=f"{OUT}/models/{{model}}/posteriors/dev.scp",
        dev_ark=f"{OUT}/models/{{model}}/posteriors/dev.ark",
        test_scp=f"{OUT}/models/{{model}}/posteriors/test.scp",
        test_ark=f"{OUT}/models/{{model}}/posteriors/test.ark",
    output:
        metrics=f"{OUT}/models/{{model}}/decode/metrics.json",
        dev_hyp=f"{OUT}/models/{{model}}/decode/dev/hyp.txt",
        dev_ref=f"{OUT}/models/{{model}}/decode/dev/ref.txt",
        dev_per=f"{OUT}/models/{{model}}/decode/dev/per.json",
        test_hyp=f"{OUT}/models/{{model}}/decode/test/hyp.txt",
        test_ref=f"{OUT}/models/{{model}}/decode/test/ref.txt",
        test_per=f"{OUT}/models/{{model}}/decode/test/per.json",
    log:
        f"{OUT}/logs/decode/{{model}}.log",
    benchmark:
        f"{OUT}/benchmarks/decode/{{model}}.tsv"
    wildcard_constraints:
        model=rf"[^/]+/(primary/{ASR}/fold0|transfer/{SER}-to-{ASR}/fold\d+/lc\d+)",
    conda:
        "../../envs/torch.yaml"
    params:
        grid=canonical(config["tasks"][ASR]["decode"]),
        meta=lambda w: model_meta(w.model),
    script:
        "../../scripts/decode_asr.py"
