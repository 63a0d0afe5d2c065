# Training: every model of the grid, primary, transfer or self-transfer control, image or speech,
# is one job of one rule body (scripts/train.py). The rule names only say which jobs they hold
# (their `job` constraint lists those folders); what a job trains comes from its identity in the
# plan's jobs (gradual_transfer.plan.training).

IMAGE_TRAINING = dict(gpu=1, mem_mb=8000, runtime=24 * 60)
SPEECH_TRAINING = dict(gpu=1, mem_mb=16000, runtime=12 * 60)


rule image_primary:
    input:
        unpack(lambda w: PLAN.training.inputs(w.job)),
    output:
        **PLAN.training.outputs(),
    log:
        main=PATHS.log("models/{job}"),
        # training curves, written as training goes (logs: a missing one re-runs nothing)
        history=PATHS.history("{job}"),
    benchmark:
        PATHS.benchmark("models/{job}")
    wildcard_constraints:
        job=PLAN.training.jobs_of(IMAGE_EXPERIMENTS, "primary"),
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        **IMAGE_TRAINING,
    params:
        training=lambda w: PLAN.training.params(w.job),
        tensorboard=PATHS.tensorboard("{job}"),
    script:
        "../../scripts/train.py"


use rule image_primary as image_transfer with:
    wildcard_constraints:
        job=PLAN.training.jobs_of(IMAGE_EXPERIMENTS, "transfer"),


use rule image_primary as image_control with:
    wildcard_constraints:
        job=PLAN.training.jobs_of(IMAGE_EXPERIMENTS, "control"),


use rule image_primary as ser_primary with:
    wildcard_constraints:
        job=PLAN.training.jobs_of([SPEECH_EXPERIMENT], "primary", "ser"),
    resources:
        **SPEECH_TRAINING,


use rule ser_primary as asr_to_ser with:
    wildcard_constraints:
        job=PLAN.training.jobs_of([SPEECH_EXPERIMENT], "transfer", "ser"),


use rule ser_primary as ser_control with:
    wildcard_constraints:
        job=PLAN.training.jobs_of([SPEECH_EXPERIMENT], "control", "ser"),


use rule ser_primary as asr_primary with:
    output:
        **PLAN.training.outputs(posteriors=True),
    wildcard_constraints:
        job=PLAN.training.jobs_of([SPEECH_EXPERIMENT], "primary", "asr"),


use rule asr_primary as ser_to_asr with:
    wildcard_constraints:
        job=PLAN.training.jobs_of([SPEECH_EXPERIMENT], "transfer", "asr"),


use rule asr_primary as asr_control with:
    wildcard_constraints:
        job=PLAN.training.jobs_of([SPEECH_EXPERIMENT], "control", "asr"),


# Studies of one's own between utterance-classification speech tasks (IEMOCAP, Kaldi data
# directories): every pair, per fold of the target
use rule ser_primary as speech_study_primary with:
    wildcard_constraints:
        job=PLAN.training.jobs_of(SPEECH_STUDIES, "primary"),


use rule ser_primary as speech_study_transfer with:
    wildcard_constraints:
        job=PLAN.training.jobs_of(SPEECH_STUDIES, "transfer"),


use rule ser_primary as speech_study_control with:
    wildcard_constraints:
        job=PLAN.training.jobs_of(SPEECH_STUDIES, "control"),


# ASR models trained only to realign the ASR task's targets (frame_targets: realigned): not results
use rule ser_primary as asr_aligner with:
    wildcard_constraints:
        job=PLAN.training.jobs_of([SPEECH_EXPERIMENT], "aligner", "asr"),
