# Training: every model of the grid, primary, transfer or self-transfer control, image or speech,
# is one job of one rule body (scripts/train.py). The rule names only say which jobs they hold
# (their `job` constraint lists those folders); what a job trains comes from its identity in JOBS.

IMAGE_TRAINING = dict(gpu=1, mem_mb=8000, runtime=24 * 60)
SPEECH_TRAINING = dict(gpu=1, mem_mb=16000, runtime=12 * 60)


rule image_primary:
    input:
        unpack(training_inputs),
    output:
        **training_outputs(),
    log:
        main=f"{OUT}/logs/models/{{job}}.log",
        # training curves, written as training goes (logs: a missing one re-runs nothing)
        history=f"{MODELS}/{{job}}/history.csv",
    benchmark:
        f"{OUT}/benchmarks/models/{{job}}.tsv"
    wildcard_constraints:
        job=jobs_of(IMAGE_EXPERIMENTS, "primary"),
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        **IMAGE_TRAINING,
    params:
        training=job_params,
        tensorboard=f"{OUT}/runs/{{job}}",
    script:
        "../../scripts/train.py"


use rule image_primary as image_transfer with:
    wildcard_constraints:
        job=jobs_of(IMAGE_EXPERIMENTS, "transfer"),


use rule image_primary as image_control with:
    wildcard_constraints:
        job=jobs_of(IMAGE_EXPERIMENTS, "control"),


use rule image_primary as ser_primary with:
    wildcard_constraints:
        job=jobs_of([SPEECH_EXPERIMENT], "primary", "iemocap"),
    resources:
        **SPEECH_TRAINING,


use rule ser_primary as asr_to_ser with:
    wildcard_constraints:
        job=jobs_of([SPEECH_EXPERIMENT], "transfer", "iemocap"),


use rule ser_primary as ser_control with:
    wildcard_constraints:
        job=jobs_of([SPEECH_EXPERIMENT], "control", "iemocap"),


use rule ser_primary as asr_primary with:
    output:
        **training_outputs(posteriors=True),
    wildcard_constraints:
        job=jobs_of([SPEECH_EXPERIMENT], "primary", "timit"),


use rule asr_primary as ser_to_asr with:
    wildcard_constraints:
        job=jobs_of([SPEECH_EXPERIMENT], "transfer", "timit"),


use rule asr_primary as asr_control with:
    wildcard_constraints:
        job=jobs_of([SPEECH_EXPERIMENT], "control", "timit"),


# Studies of one's own between utterance-classification speech tasks (IEMOCAP, Kaldi data
# directories): every pair, per fold of the target
use rule ser_primary as speech_study_primary with:
    wildcard_constraints:
        job=jobs_of(SPEECH_STUDIES, "primary"),


use rule ser_primary as speech_study_transfer with:
    wildcard_constraints:
        job=jobs_of(SPEECH_STUDIES, "transfer"),


use rule ser_primary as speech_study_control with:
    wildcard_constraints:
        job=jobs_of(SPEECH_STUDIES, "control"),


# ASR models trained only to realign TIMIT's targets (frame_targets: realigned): not results
use rule ser_primary as asr_aligner with:
    wildcard_constraints:
        job=jobs_of([SPEECH_EXPERIMENT], "aligner", "timit"),
