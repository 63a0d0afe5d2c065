# Speech experiment: the HMM of TIMIT, the realignment of its targets (where switched on) and the
# hybrid decoding of every ASR-target model (its
# primary, the SER → ASR transfers and the ASR self-transfer controls, trained by the rules in
# models.smk), on CPU.


rule hmm_model:
    input:
        f"{OUT}/features/timit/train.arrow",
    output:
        f"{OUT}/features/timit/hmm.json",
    log:
        f"{OUT}/logs/features/hmm.log",
    conda:
        "../../envs/torch.yaml"
    params:
        version=STAGE_VERSIONS["decoding"],
    script:
        "../../scripts/hmm_model.py"


use rule hmm_model as hmm_realigned with:
    input:
        f"{OUT}/features/timit/realigned/pass{{targets_pass}}/train.arrow",
    output:
        f"{OUT}/features/timit/realigned/pass{{targets_pass}}/hmm.json",
    log:
        f"{OUT}/logs/features/hmm_pass{{targets_pass}}.log",


# Embedded Viterbi realignment (frame_targets: realigned): the aligner model of pass p, trained
# on the targets of pass p - 1, force-aligns train and dev through their reference phones.
rule align_timit:
    input:
        unpack(alignment_inputs),
    output:
        train=f"{OUT}/features/timit/realigned/pass{{targets_pass}}/train.arrow",
        dev=f"{OUT}/features/timit/realigned/pass{{targets_pass}}/dev.arrow",
        train_ali=f"{OUT}/features/timit/realigned/pass{{targets_pass}}/ali_train.ark",
        train_scp=f"{OUT}/features/timit/realigned/pass{{targets_pass}}/ali_train.scp",
        dev_ali=f"{OUT}/features/timit/realigned/pass{{targets_pass}}/ali_dev.ark",
        dev_scp=f"{OUT}/features/timit/realigned/pass{{targets_pass}}/ali_dev.scp",
        report=f"{OUT}/features/timit/realigned/pass{{targets_pass}}/report.json",
    log:
        f"{OUT}/logs/features/align_pass{{targets_pass}}.log",
    benchmark:
        f"{OUT}/benchmarks/features/align_pass{{targets_pass}}.tsv"
    wildcard_constraints:
        targets_pass=r"[1-9]\d*",
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=4 * 60,
    params:
        realign=realign_params(),
        version=STAGE_VERSIONS["alignment"],
    script:
        "../../scripts/align_timit.py"


rule decode_asr:
    input:
        hmm=hmm_file(),
        dev_ref=f"{OUT}/features/timit/dev.arrow",
        test_ref=f"{OUT}/features/timit/test.arrow",
        dev_scp=f"{MODELS}/{{job}}/posteriors/dev.scp",
        dev_ark=f"{MODELS}/{{job}}/posteriors/dev.ark",
        test_scp=f"{MODELS}/{{job}}/posteriors/test.scp",
        test_ark=f"{MODELS}/{{job}}/posteriors/test.ark",
    output:
        metrics=f"{MODELS}/{{job}}/decode/metrics.json",
        dev_hyp=f"{MODELS}/{{job}}/decode/dev/hyp.txt",
        dev_ref=f"{MODELS}/{{job}}/decode/dev/ref.txt",
        dev_per=f"{MODELS}/{{job}}/decode/dev/per.json",
        test_hyp=f"{MODELS}/{{job}}/decode/test/hyp.txt",
        test_ref=f"{MODELS}/{{job}}/decode/test/ref.txt",
        test_per=f"{MODELS}/{{job}}/decode/test/per.json",
        dev_speakers=f"{MODELS}/{{job}}/decode/dev/per_speaker.tsv",
        test_speakers=f"{MODELS}/{{job}}/decode/test/per_speaker.tsv",
        dev_align=f"{MODELS}/{{job}}/decode/dev/align.txt",
        test_align=f"{MODELS}/{{job}}/decode/test/align.txt",
    log:
        f"{OUT}/logs/decode/{{job}}.log",
    benchmark:
        f"{OUT}/benchmarks/decode/{{job}}.tsv"
    wildcard_constraints:
        job=jobs_of([SPEECH_EXPERIMENT], target_dataset="timit"),
    conda:
        "../../envs/torch.yaml"
    params:
        grid=decode_settings(),
        job=lambda w: JOBS[w.job].meta(),
        version=STAGE_VERSIONS["decoding"],
    script:
        "../../scripts/decode_asr.py"
