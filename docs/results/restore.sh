# Sourced by the run_*.sh scripts: restore FROM TO copies FROM/{trials,splits}/*.json and
# FROM/train_config.json (a published folder) into the RUNS folder TO, never over a file
# already there (what `cp -n` does; coreutils 9.2 made `cp -n` exit 1 when it skips a file,
# hence the test): train-all then counts those trials as finished.
restore_published() {
    local from=$1 to=$2 file
    [ -d "$from/trials" ] || return 0
    mkdir -p "$to/trials" "$to/splits"
    for file in "$from"/trials/*.json "$from"/splits/*.json "$from/train_config.json"; do
        if [ -f "$file" ] && [ ! -e "$to/${file#"$from"/}" ]; then
            cp "$file" "$to/${file#"$from"/}"
        fi
    done
    echo "restore: $(ls "$to/trials" | wc -l) trials in $to/trials"
}
