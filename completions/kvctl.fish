# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_kvctl_global_optspecs
    string join \n h/help V/version
end

function __fish_kvctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_kvctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_kvctl_using_subcommand
    set -l cmd (__fish_kvctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c kvctl -n "__fish_kvctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvctl -n "__fish_kvctl_needs_command" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_needs_command" -f -a "serve" -d 'Run the HTTP key-value store on a data directory'
complete -c kvctl -n "__fish_kvctl_needs_command" -f -a "get" -d 'Print the value of a key'
complete -c kvctl -n "__fish_kvctl_needs_command" -f -a "put" -d 'Set a key to a value (a string unless --json)'
complete -c kvctl -n "__fish_kvctl_needs_command" -f -a "rm" -d 'Delete a key'
complete -c kvctl -n "__fish_kvctl_needs_command" -f -a "del" -d 'Delete a key'
complete -c kvctl -n "__fish_kvctl_needs_command" -f -a "ls" -d 'List keys, optionally only those starting with a prefix'
complete -c kvctl -n "__fish_kvctl_needs_command" -f -a "stats" -d 'Show the number of keys and the bytes their values take'
complete -c kvctl -n "__fish_kvctl_needs_command" -f -a "batch" -d 'Run a batch of set/get/delete operations from a JSON file or stdin'
complete -c kvctl -n "__fish_kvctl_needs_command" -f -a "wal" -d 'Inspect, compact or repair a data directory\'s write-ahead log'
complete -c kvctl -n "__fish_kvctl_needs_command" -f -a "snapshot" -d 'Take a consistent backup of a running server\'s data'
complete -c kvctl -n "__fish_kvctl_needs_command" -f -a "bench" -d 'Drive a running server with a workload and report throughput and latency'
complete -c kvctl -n "__fish_kvctl_needs_command" -f -a "completions" -d 'Print shell completions for kvctl'
complete -c kvctl -n "__fish_kvctl_needs_command" -f -a "man" -d 'Write kvctl\'s man pages'
complete -c kvctl -n "__fish_kvctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -l port -d 'Port to listen on' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -l data-dir -d 'Directory holding wal.log; created if missing' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -l host -d 'Address to bind; the default accepts local connections only' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -l fsync -d 'When writes are forced to disk before they are acknowledged' -r -f -a "always\t'fdatasync before every acknowledgement; concurrent writers share one (group commit)'
interval\t'fdatasync once a second: a machine crash can lose up to the last second'
never\t'leave flushing to the OS: a machine crash can lose recent writes'"
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -l log-level -d 'Log filter: a level (error, warn, info, debug, trace, off) and/or target=level directives, comma-separated; overrides RUST_LOG' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -l max-key-bytes -d 'Longest key accepted, in bytes' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -l max-body-bytes -d 'Largest request body accepted, in bytes' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -l max-batch-ops -d 'Most operations accepted in one batch' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -l compact-min-bytes -d 'Compact the log by itself only once it is at least this large, in bytes; 0 turns automatic compaction off' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -l compact-ratio -d '...and has grown to this many times its size after the last compaction (or at start)' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -l auth-token-file -d 'Require `Authorization: Bearer <token>` on every request but GET /health, with the token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -l tls-cert -d 'Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -l tls-key -d 'The PEM private key of --tls-cert' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -l header-timeout -d 'Close a connection that has not sent a complete request head this long after connecting (TLS handshake included) or after its first byte' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -l idle-timeout -d 'Close a kept-alive connection that sends no new request for this long' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -l request-timeout -d 'Answer 503 to a request not answered within this long after its head arrived (a write in it is applied whole or not at all)' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -l max-connections -d 'Most connections open at once; more wait to be accepted. Lowered to what the open-file limit allows' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvctl -n "__fish_kvctl_using_subcommand serve" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_using_subcommand get" -l server -d 'URL of the server' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand get" -l data-dir -d 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand get" -l token-file -d 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand get" -l cacert -d 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand get" -s o -l output -d 'Output format [default: table on a terminal, plain otherwise]' -r -f -a "json\t'What the server answers: JSON bodies'
table\t'Tables for people'
plain\t'Bare values and one item per line, for scripts'"
complete -c kvctl -n "__fish_kvctl_using_subcommand get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvctl -n "__fish_kvctl_using_subcommand get" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_using_subcommand put" -l ttl -d 'Expire the key after this many seconds' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand put" -l server -d 'URL of the server' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand put" -l data-dir -d 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand put" -l token-file -d 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand put" -l cacert -d 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand put" -s o -l output -d 'Output format [default: table on a terminal, plain otherwise]' -r -f -a "json\t'What the server answers: JSON bodies'
table\t'Tables for people'
plain\t'Bare values and one item per line, for scripts'"
complete -c kvctl -n "__fish_kvctl_using_subcommand put" -l json -d 'Parse VALUE as JSON (`kvctl put n 42 --json` stores a number)'
complete -c kvctl -n "__fish_kvctl_using_subcommand put" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvctl -n "__fish_kvctl_using_subcommand put" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_using_subcommand rm" -l server -d 'URL of the server' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand rm" -l data-dir -d 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand rm" -l token-file -d 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand rm" -l cacert -d 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand rm" -s o -l output -d 'Output format [default: table on a terminal, plain otherwise]' -r -f -a "json\t'What the server answers: JSON bodies'
table\t'Tables for people'
plain\t'Bare values and one item per line, for scripts'"
complete -c kvctl -n "__fish_kvctl_using_subcommand rm" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvctl -n "__fish_kvctl_using_subcommand rm" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_using_subcommand del" -l server -d 'URL of the server' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand del" -l data-dir -d 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand del" -l token-file -d 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand del" -l cacert -d 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand del" -s o -l output -d 'Output format [default: table on a terminal, plain otherwise]' -r -f -a "json\t'What the server answers: JSON bodies'
table\t'Tables for people'
plain\t'Bare values and one item per line, for scripts'"
complete -c kvctl -n "__fish_kvctl_using_subcommand del" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvctl -n "__fish_kvctl_using_subcommand del" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_using_subcommand ls" -s p -l prefix -d 'Only keys starting with this prefix' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand ls" -l server -d 'URL of the server' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand ls" -l data-dir -d 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand ls" -l token-file -d 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand ls" -l cacert -d 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand ls" -s o -l output -d 'Output format [default: table on a terminal, plain otherwise]' -r -f -a "json\t'What the server answers: JSON bodies'
table\t'Tables for people'
plain\t'Bare values and one item per line, for scripts'"
complete -c kvctl -n "__fish_kvctl_using_subcommand ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvctl -n "__fish_kvctl_using_subcommand ls" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_using_subcommand stats" -l server -d 'URL of the server' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand stats" -l data-dir -d 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand stats" -l token-file -d 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand stats" -l cacert -d 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand stats" -s o -l output -d 'Output format [default: table on a terminal, plain otherwise]' -r -f -a "json\t'What the server answers: JSON bodies'
table\t'Tables for people'
plain\t'Bare values and one item per line, for scripts'"
complete -c kvctl -n "__fish_kvctl_using_subcommand stats" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvctl -n "__fish_kvctl_using_subcommand stats" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_using_subcommand batch" -l server -d 'URL of the server' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand batch" -l data-dir -d 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand batch" -l token-file -d 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand batch" -l cacert -d 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand batch" -s o -l output -d 'Output format [default: table on a terminal, plain otherwise]' -r -f -a "json\t'What the server answers: JSON bodies'
table\t'Tables for people'
plain\t'Bare values and one item per line, for scripts'"
complete -c kvctl -n "__fish_kvctl_using_subcommand batch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvctl -n "__fish_kvctl_using_subcommand batch" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and not __fish_seen_subcommand_from inspect compact repair help" -s h -l help -d 'Print help'
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and not __fish_seen_subcommand_from inspect compact repair help" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and not __fish_seen_subcommand_from inspect compact repair help" -f -a "inspect" -d 'Summarise a log (or list its records) without changing it'
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and not __fish_seen_subcommand_from inspect compact repair help" -f -a "compact" -d 'Rewrite the log to the live state only, atomically'
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and not __fish_seen_subcommand_from inspect compact repair help" -f -a "repair" -d 'Cut a corrupt log at its last good record, keeping a backup'
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and not __fish_seen_subcommand_from inspect compact repair help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from inspect" -l data-dir -d 'The data directory holding wal.log' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from inspect" -l key -d 'With --records: only records of this key' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from inspect" -l prefix -d 'With --records: only records whose key starts with this' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from inspect" -l limit -d 'With --records: at most this many records' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from inspect" -s o -l output -d 'Output format [default: table on a terminal, plain otherwise]' -r -f -a "json\t'What the server answers: JSON bodies'
table\t'Tables for people'
plain\t'Bare values and one item per line, for scripts'"
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from inspect" -l records -d 'List records instead of the summary'
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from inspect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from inspect" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from compact" -l data-dir -d 'The data directory holding wal.log' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from compact" -l server -d 'Compact the log of the server at this URL while it serves, instead of a stopped data directory' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from compact" -l token-file -d 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from compact" -l cacert -d 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from compact" -s o -l output -d 'Output format [default: table on a terminal, plain otherwise]' -r -f -a "json\t'What the server answers: JSON bodies'
table\t'Tables for people'
plain\t'Bare values and one item per line, for scripts'"
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from compact" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from compact" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from repair" -l data-dir -d 'The data directory holding wal.log' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from repair" -s h -l help -d 'Print help'
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from repair" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from help" -f -a "inspect" -d 'Summarise a log (or list its records) without changing it'
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from help" -f -a "compact" -d 'Rewrite the log to the live state only, atomically'
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from help" -f -a "repair" -d 'Cut a corrupt log at its last good record, keeping a backup'
complete -c kvctl -n "__fish_kvctl_using_subcommand wal; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kvctl -n "__fish_kvctl_using_subcommand snapshot; and not __fish_seen_subcommand_from save help" -s h -l help -d 'Print help'
complete -c kvctl -n "__fish_kvctl_using_subcommand snapshot; and not __fish_seen_subcommand_from save help" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_using_subcommand snapshot; and not __fish_seen_subcommand_from save help" -f -a "save" -d 'Write the server\'s current state to FILE as a compacted log, atomically'
complete -c kvctl -n "__fish_kvctl_using_subcommand snapshot; and not __fish_seen_subcommand_from save help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kvctl -n "__fish_kvctl_using_subcommand snapshot; and __fish_seen_subcommand_from save" -l server -d 'URL of the server' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand snapshot; and __fish_seen_subcommand_from save" -l token-file -d 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand snapshot; and __fish_seen_subcommand_from save" -l cacert -d 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand snapshot; and __fish_seen_subcommand_from save" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvctl -n "__fish_kvctl_using_subcommand snapshot; and __fish_seen_subcommand_from save" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_using_subcommand snapshot; and __fish_seen_subcommand_from help" -f -a "save" -d 'Write the server\'s current state to FILE as a compacted log, atomically'
complete -c kvctl -n "__fish_kvctl_using_subcommand snapshot; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kvctl -n "__fish_kvctl_using_subcommand bench" -l server -d 'URL of the server' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand bench" -s w -l workload -d 'What each request does' -r -f -a "get\t'GET /kv/{key} of random keys'
put\t'PUT /kv/{key} of random keys'
mixed\t'GET or PUT, by --read-ratio'
batch\t'POST /kv/batch with --batch-size sets'
delete\t'DELETE /kv/{key} of random keys'
list\t'GET /kv?prefix=... matching 1000 keys of the keyspace'"
complete -c kvctl -n "__fish_kvctl_using_subcommand bench" -s c -l clients -d 'Concurrent keep-alive connections' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand bench" -s d -l duration -d 'How long to run (e.g. 10s, 1m) [default: 10s unless --requests]' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand bench" -s n -l requests -d 'Stop after this many requests instead of after a duration' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand bench" -l keyspace -d 'Number of distinct keys' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand bench" -l value-size -d 'Bytes of each (string) value written' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand bench" -l ttl -d 'ttl of the keys written, in seconds' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand bench" -l read-ratio -d 'Share of GETs in the mixed workload' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand bench" -l batch-size -d 'Sets per request in the batch workload' -r
complete -c kvctl -n "__fish_kvctl_using_subcommand bench" -l token-file -d 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand bench" -l cacert -d 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand bench" -s o -l output -d 'Output format [default: table on a terminal, plain otherwise]' -r -f -a "json\t'What the server answers: JSON bodies'
table\t'Tables for people'
plain\t'Bare values and one item per line, for scripts'"
complete -c kvctl -n "__fish_kvctl_using_subcommand bench" -l preload -d 'Write every key of the keyspace before measuring'
complete -c kvctl -n "__fish_kvctl_using_subcommand bench" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kvctl -n "__fish_kvctl_using_subcommand bench" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_using_subcommand completions" -s h -l help -d 'Print help'
complete -c kvctl -n "__fish_kvctl_using_subcommand completions" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_using_subcommand man" -l out-dir -d 'Write kvctl.1 and one page per subcommand into this directory instead of printing kvctl.1' -r -F
complete -c kvctl -n "__fish_kvctl_using_subcommand man" -s h -l help -d 'Print help'
complete -c kvctl -n "__fish_kvctl_using_subcommand man" -s V -l version -d 'Print version'
complete -c kvctl -n "__fish_kvctl_using_subcommand help; and not __fish_seen_subcommand_from serve get put rm ls stats batch wal snapshot bench completions man help" -f -a "serve" -d 'Run the HTTP key-value store on a data directory'
complete -c kvctl -n "__fish_kvctl_using_subcommand help; and not __fish_seen_subcommand_from serve get put rm ls stats batch wal snapshot bench completions man help" -f -a "get" -d 'Print the value of a key'
complete -c kvctl -n "__fish_kvctl_using_subcommand help; and not __fish_seen_subcommand_from serve get put rm ls stats batch wal snapshot bench completions man help" -f -a "put" -d 'Set a key to a value (a string unless --json)'
complete -c kvctl -n "__fish_kvctl_using_subcommand help; and not __fish_seen_subcommand_from serve get put rm ls stats batch wal snapshot bench completions man help" -f -a "rm" -d 'Delete a key'
complete -c kvctl -n "__fish_kvctl_using_subcommand help; and not __fish_seen_subcommand_from serve get put rm ls stats batch wal snapshot bench completions man help" -f -a "ls" -d 'List keys, optionally only those starting with a prefix'
complete -c kvctl -n "__fish_kvctl_using_subcommand help; and not __fish_seen_subcommand_from serve get put rm ls stats batch wal snapshot bench completions man help" -f -a "stats" -d 'Show the number of keys and the bytes their values take'
complete -c kvctl -n "__fish_kvctl_using_subcommand help; and not __fish_seen_subcommand_from serve get put rm ls stats batch wal snapshot bench completions man help" -f -a "batch" -d 'Run a batch of set/get/delete operations from a JSON file or stdin'
complete -c kvctl -n "__fish_kvctl_using_subcommand help; and not __fish_seen_subcommand_from serve get put rm ls stats batch wal snapshot bench completions man help" -f -a "wal" -d 'Inspect, compact or repair a data directory\'s write-ahead log'
complete -c kvctl -n "__fish_kvctl_using_subcommand help; and not __fish_seen_subcommand_from serve get put rm ls stats batch wal snapshot bench completions man help" -f -a "snapshot" -d 'Take a consistent backup of a running server\'s data'
complete -c kvctl -n "__fish_kvctl_using_subcommand help; and not __fish_seen_subcommand_from serve get put rm ls stats batch wal snapshot bench completions man help" -f -a "bench" -d 'Drive a running server with a workload and report throughput and latency'
complete -c kvctl -n "__fish_kvctl_using_subcommand help; and not __fish_seen_subcommand_from serve get put rm ls stats batch wal snapshot bench completions man help" -f -a "completions" -d 'Print shell completions for kvctl'
complete -c kvctl -n "__fish_kvctl_using_subcommand help; and not __fish_seen_subcommand_from serve get put rm ls stats batch wal snapshot bench completions man help" -f -a "man" -d 'Write kvctl\'s man pages'
complete -c kvctl -n "__fish_kvctl_using_subcommand help; and not __fish_seen_subcommand_from serve get put rm ls stats batch wal snapshot bench completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kvctl -n "__fish_kvctl_using_subcommand help; and __fish_seen_subcommand_from wal" -f -a "inspect" -d 'Summarise a log (or list its records) without changing it'
complete -c kvctl -n "__fish_kvctl_using_subcommand help; and __fish_seen_subcommand_from wal" -f -a "compact" -d 'Rewrite the log to the live state only, atomically'
complete -c kvctl -n "__fish_kvctl_using_subcommand help; and __fish_seen_subcommand_from wal" -f -a "repair" -d 'Cut a corrupt log at its last good record, keeping a backup'
complete -c kvctl -n "__fish_kvctl_using_subcommand help; and __fish_seen_subcommand_from snapshot" -f -a "save" -d 'Write the server\'s current state to FILE as a compacted log, atomically'
