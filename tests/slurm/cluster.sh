#!/usr/bin/env bash
# A real single-node SLURM (slurmctld + slurmd + munge) with two fake GPUs, for testing the
# workflow's SLURM profile on a machine without GPUs or a cluster (CI, a laptop in a container).
#
#   tests/slurm/cluster.sh install        apt-get slurm-wlm and munge (Debian/Ubuntu, as root)
#   tests/slurm/cluster.sh start DIR      configure in DIR and start the daemons; prints the
#                                         SLURM_CONF to export for sbatch/squeue/snakemake
#   tests/slurm/cluster.sh stop DIR       stop the daemons this script started (by their PIDs)
#
# Everything lives in DIR (config, state, spool, logs, PID files). Clients find the cluster
# through SLURM_CONF=DIR/slurm.conf, except `srun` inside a job: the Snakemake SLURM plugin
# starts each job's step with every SLURM_* variable removed, so srun reads the default
# /etc/slurm/slurm.conf. That file is made a link to DIR/slurm.conf while the cluster runs (and
# the script refuses to start where a SLURM is already configured). The fake GPUs are
# character devices (clones of /dev/null): SLURM then schedules `--gpus=1` requests and sets
# CUDA_VISIBLE_DEVICES in the job, although CUDA finds no device there. No accounting daemon:
# `squeue` is the only status source (see profiles/slurm/config.yaml). Facts behind each
# setting: ../shared/reference/SLURM.md in the project's design notes, and the README.
set -euo pipefail

SYSTEM_CONF=/etc/slurm/slurm.conf

die() { echo "cluster.sh: $*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

install_packages() {
    command -v apt-get >/dev/null || die "needs apt-get (Debian/Ubuntu); install slurm-wlm and munge by hand"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge
    # the packages try to start their services; policy-rc.d refusals are harmless: start() does it
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        echo "munge already running: using it" >&2
        return
    fi
    [ -s /etc/munge/munge.key ] || as_root mungekey --create
    as_root install -d -o munge -g munge -m 0755 /run/munge
    as_root runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null || die "munged did not start"
    cp /run/munge/munged.pid "$DIR/munged.pid"  # ours to stop
}

write_config() {
    local node cpus memory
    node=$(hostname -s)
    # the machine as slurmd sees it; advertise 80 % of its memory to leave room for the system
    read -r cpus memory < <(slurmd -C | awk 'NR == 1 {
        for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        print v["CPUs"], int(v["RealMemory"] * 0.8) }')
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/gpus"
    for i in 0 1; do
        [ -c "$DIR/gpus/nvidia$i" ] || as_root mknod -m 0666 "$DIR/gpus/nvidia$i" c 1 3
    done
    cat >"$DIR/slurm.conf" <<EOF
ClusterName=gradual-transfer-test
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
# no cgroups in containers: track processes by their parent, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$((memory / cpus))
GresTypes=gpu
# no slurmdbd: no accounting (and no AccountingStorageTRES line, or slurmctld refuses gres/gpu)
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# finished jobs stay visible to squeue for an hour: without accounting it is the only status
MinJobAge=3600
MailProg=/bin/true
ReturnToService=2
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory Gres=gpu:2 State=UNKNOWN
PartitionName=main Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    # without File= the node is INVAL; with plain files jobs get no CUDA_VISIBLE_DEVICES
    echo "Name=gpu File=$DIR/gpus/nvidia[0-1]" >"$DIR/gres.conf"
    echo "$node" >"$DIR/node"
}

start() {
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    command -v slurmctld >/dev/null || die "SLURM is not installed: run '$0 install' first"
    if [ -e "$SYSTEM_CONF" ] || [ -L "$SYSTEM_CONF" ]; then
        die "$SYSTEM_CONF exists: this machine has a SLURM configured already; use it, or stop the" \
            "cluster that made it ('$0 stop DIR') or remove the file"
    fi
    export SLURM_CONF="$DIR/slurm.conf"
    write_config
    as_root mkdir -p "$(dirname "$SYSTEM_CONF")"
    as_root ln -s "$DIR/slurm.conf" "$SYSTEM_CONF"
    start_munge
    local node
    node=$(cat "$DIR/node")
    as_root env SLURM_CONF="$SLURM_CONF" slurmctld -c  # -c: a clean state, no jobs from earlier runs
    as_root env SLURM_CONF="$SLURM_CONF" slurmd -N "$node"
    for _ in $(seq 100); do scontrol ping >/dev/null 2>&1 && break; sleep 0.2; done
    scontrol ping >/dev/null || die "slurmctld does not answer; see $DIR/slurmctld.log"
    local state=""
    for i in $(seq 150); do
        state=$(sinfo -h -N -n "$node" -o %T 2>/dev/null || true)
        [ "$state" = idle ] && break
        if [ "$i" = 25 ] && [[ "$state" == drain* || "$state" == down* ]]; then
            scontrol update NodeName="$node" State=RESUME || true
        fi
        sleep 0.2
    done
    [ "$state" = idle ] || die "node $node is '$state', not idle; see $DIR/slurmd.log and $DIR/slurmctld.log"
    echo "SLURM_CONF=$SLURM_CONF"
}

stop() {
    DIR=$(cd "$DIR" && pwd)
    local name pid
    for name in slurmd slurmctld munged; do
        [ -s "$DIR/$name.pid" ] || continue
        pid=$(cat "$DIR/$name.pid")
        if kill -0 "$pid" 2>/dev/null; then
            as_root kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && as_root kill -9 "$pid"
        fi
        rm -f "$DIR/$name.pid"
    done
    if [ "$(readlink "$SYSTEM_CONF" 2>/dev/null)" = "$DIR/slurm.conf" ]; then
        as_root rm -f "$SYSTEM_CONF"
    fi
}

case "${1:-}" in
    install) install_packages ;;
    start) [ -n "${2:-}" ] || die "usage: $0 start DIR"; DIR=$2; start ;;
    stop) [ -n "${2:-}" ] || die "usage: $0 stop DIR"; DIR=$2; stop ;;
    *) die "usage: $0 install | start DIR | stop DIR" ;;
esac
