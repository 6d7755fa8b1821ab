#!/bin/bash
# The @test:stamp tool: first records when it started, as $EPOCHREALTIME (a bash builtin, so no
# fork comes before it), in <module dir>/<job id>.start; then writes one small receipt output.
started=$EPOCHREALTIME
set -eu
output_file=$2
temp_dir=${3%/}
work=${temp_dir%/*}  # work dirs are <output_path>/<job id>/tmp
job=${work##*/}
printf '%s\n' "$started" > "${4:-${0%/*}}/$job.start"  # $4: where the test reads it
printf '%s\n' "$job" > "$temp_dir/receipt.txt"
printf '[{"name": "receipt", "type": "file", "path": "%s/receipt.txt"}]' "$temp_dir" > "$output_file"
