# Speech experiment: the HMM of TIMIT and the hybrid decoding of every ASR-target model (its
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


rule decode_asr:
    input:
        hmm=f"{OUT}/features/timit/hmm.json",
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
    log:
        f"{OUT}/logs/decode/{{job}}.log",
    benchmark:
        f"{OUT}/benchmarks/decode/{{job}}.tsv"
    wildcard_constraints:
        job=jobs_of("speech", target_dataset="timit"),
    conda:
        "../../envs/torch.yaml"
    params:
        grid=canonical(speech_task("timit")["decode"]),
        job=lambda w: JOBS[w.job].meta(),
        version=STAGE_VERSIONS["decoding"],
    script:
        "../../scripts/decode_asr.py"
