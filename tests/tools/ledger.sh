#!/bin/sh
# The @test:ledger tool: appends its job's id to the module's ledger (one line per run, so a
# test can see that no job ran twice) and writes one small receipt output. Plain sh: quick.
set -eu
output_file=$2
temp_dir=$3
job=$(basename "$(dirname "$temp_dir")")  # work dirs are <output_path>/<job id>/tmp
echo "$job" >> "${4:-$(dirname "$0")}/ledger.txt"  # $4: where the test reads it
echo "$job" > "$temp_dir/receipt.txt"
printf '[{"name": "receipt", "type": "file", "path": "%s/receipt.txt"}]' "$temp_dir" > "$output_file"
