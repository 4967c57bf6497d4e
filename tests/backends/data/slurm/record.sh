#!/usr/bin/env bash
# Records the real Slurm output that tests/backends/test_slurm.py parses.
# Run against the test cluster (eval "$(scripts/slurm-up.sh)"), from this directory:
#     bash record.sh
# The formats are the ones ganga_async/backends/slurm.py asks for.
set -uo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fields='%i|%T|%S|%e'

sbatch --parsable -o /dev/null --wrap true >sbatch_parsable.out
# An array: tasks that succeed, fail, run long (cancelled below), run into their time limit.
array=$(sbatch --parsable -o /dev/null --chdir="$work" --time=1 --array=0-5 --wrap \
    'case $SLURM_ARRAY_TASK_ID in 0|1) exit 0;; 2) exit 3;; 3) kill -9 $$;; 4) sleep 300;; 5) sleep 100;; esac')
pending=$(sbatch --parsable -o /dev/null --hold --array=0-3 --wrap true)
single=$(sbatch --parsable -o /dev/null --wrap 'sleep 300')
sleep 8
scancel "${array}_4"
scancel "$pending"
sleep 3
squeue --noheader --array --states=all --jobs="$array,$pending,$single" --format="$fields" >squeue_mixed.out
sacct --noheader --parsable2 --allocations --jobs="$array,$pending,$single" \
    --format=JobID,State,ExitCode,Start,End >sacct_mixed.out
scancel "$single"
squeue --noheader --array --states=all --jobs=999999 --format="$fields" >/dev/null 2>squeue_unknown_id.err
sbatch --parsable -p nosuchpartition --wrap true 2>sbatch_bad_partition.err
sbatch --parsable --time=banana --wrap true 2>sbatch_bad_time.err
scontrol show config >scontrol_show_config.out

# A pending (held) array and a job that runs into its one-minute time limit.
held=$(sbatch --parsable -o /dev/null --hold --array=0-2 --wrap true)
limited=$(sbatch --parsable -o /dev/null --time=1 --wrap 'sleep 300')
for _ in $(seq 60); do
    sleep 5
    sacct --noheader --parsable2 --allocations --jobs="$limited" --format=State | grep -q TIMEOUT && break
done
squeue --noheader --array --states=all --jobs="$held,$limited" --format="$fields" >squeue_pending_timeout.out
sacct --noheader --parsable2 --allocations --jobs="$held,$limited" \
    --format=JobID,State,ExitCode,Start,End >sacct_pending_timeout.out
scancel "$held"
