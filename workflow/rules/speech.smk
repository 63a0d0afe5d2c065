# Speech experiment: the HMM of the ASR task's corpus, the realignment of its targets (where
# switched on) and the hybrid decoding of every ASR-target model (its primary, the SER → ASR
# transfers and the ASR self-transfer controls, trained by the rules in models.smk), on CPU.


rule hmm_model:
    input:
        PLAN.asr.features(0)["train"],
    output:
        PLAN.asr.hmm(0),
    log:
        PATHS.log("features/hmm"),
    conda:
        "../../envs/torch.yaml"
    params:
        version=STAGE_VERSIONS["decoding"],
    script:
        "../../scripts/hmm_model.py"


use rule hmm_model as hmm_realigned with:
    input:
        PLAN.asr.realigned()["train"],
    output:
        PLAN.asr.hmm("{targets_pass}"),
    log:
        PATHS.log("features/hmm_pass{targets_pass}"),


# Embedded Viterbi realignment (frame_targets: realigned): the aligner model of pass p, trained
# on the targets of pass p - 1, force-aligns train and dev through their reference phones.
rule realign_asr:
    input:
        unpack(lambda w: PLAN.asr.alignment_inputs(w.targets_pass)),
    output:
        **PLAN.asr.realigned(),
    log:
        PATHS.log("features/align_pass{targets_pass}"),
    benchmark:
        PATHS.benchmark("features/align_pass{targets_pass}")
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
        realign=PLAN.asr.realign_params(),
        version=STAGE_VERSIONS["alignment"],
    script:
        "../../scripts/realign_asr.py"


rule decode_asr:
    input:
        **PLAN.asr.decode_inputs("{job}"),
    output:
        **PATHS.decode_outputs("{job}"),
    log:
        PATHS.log("decode/{job}"),
    benchmark:
        PATHS.benchmark("decode/{job}")
    wildcard_constraints:
        job=PLAN.training.jobs_of([SPEECH_EXPERIMENT], role="asr"),
    conda:
        "../../envs/torch.yaml"
    params:
        grid=PLAN.asr.decode_settings(),
        job=lambda w: PLAN.training.jobs[w.job].meta(),
        version=STAGE_VERSIONS["decoding"],
    script:
        "../../scripts/decode_asr.py"
