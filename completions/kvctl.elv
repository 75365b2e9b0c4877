
use builtin;
use str;

set edit:completion:arg-completer[kvctl] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'kvctl'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'kvctl'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Run the HTTP key-value store on a data directory'
            cand get 'Print the value of a key'
            cand put 'Set a key to a value (a string unless --json)'
            cand rm 'Delete a key'
            cand del 'Delete a key'
            cand ls 'List keys, optionally only those starting with a prefix'
            cand stats 'Show the number of keys and the bytes their values take'
            cand batch 'Run a batch of set/get/delete operations from a JSON file or stdin'
            cand wal 'Inspect, compact or repair a data directory''s write-ahead log'
            cand snapshot 'Take a consistent backup of a running server''s data'
            cand bench 'Drive a running server with a workload and report throughput and latency'
            cand completions 'Print shell completions for kvctl'
            cand man 'Write kvctl''s man pages'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kvctl;serve'= {
            cand --port 'Port to listen on'
            cand --data-dir 'Directory holding wal.log; created if missing'
            cand --host 'Address to bind; the default accepts local connections only'
            cand --fsync 'When writes are forced to disk before they are acknowledged'
            cand --log-level 'Log filter: a level (error, warn, info, debug, trace, off) and/or target=level directives, comma-separated; overrides RUST_LOG'
            cand --max-key-bytes 'Longest key accepted, in bytes'
            cand --max-body-bytes 'Largest request body accepted, in bytes'
            cand --max-batch-ops 'Most operations accepted in one batch'
            cand --compact-min-bytes 'Compact the log by itself only once it is at least this large, in bytes; 0 turns automatic compaction off'
            cand --compact-ratio '...and has grown to this many times its size after the last compaction (or at start)'
            cand --auth-token-file 'Require `Authorization: Bearer <token>` on every request but GET /health, with the token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set'
            cand --tls-cert 'Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key'
            cand --tls-key 'The PEM private key of --tls-cert'
            cand --header-timeout 'Close a connection that has not sent a complete request head this long after connecting (TLS handshake included) or after its first byte'
            cand --idle-timeout 'Close a kept-alive connection that sends no new request for this long'
            cand --request-timeout 'Answer 503 to a request not answered within this long after its head arrived (a write in it is applied whole or not at all)'
            cand --max-connections 'Most connections open at once; more wait to be accepted. Lowered to what the open-file limit allows'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvctl;get'= {
            cand --server 'URL of the server'
            cand --data-dir 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)'
            cand --token-file 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set'
            cand --cacert 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots'
            cand -o 'Output format [default: table on a terminal, plain otherwise]'
            cand --output 'Output format [default: table on a terminal, plain otherwise]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvctl;put'= {
            cand --ttl 'Expire the key after this many seconds'
            cand --server 'URL of the server'
            cand --data-dir 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)'
            cand --token-file 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set'
            cand --cacert 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots'
            cand -o 'Output format [default: table on a terminal, plain otherwise]'
            cand --output 'Output format [default: table on a terminal, plain otherwise]'
            cand --json 'Parse VALUE as JSON (`kvctl put n 42 --json` stores a number)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvctl;rm'= {
            cand --server 'URL of the server'
            cand --data-dir 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)'
            cand --token-file 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set'
            cand --cacert 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots'
            cand -o 'Output format [default: table on a terminal, plain otherwise]'
            cand --output 'Output format [default: table on a terminal, plain otherwise]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvctl;del'= {
            cand --server 'URL of the server'
            cand --data-dir 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)'
            cand --token-file 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set'
            cand --cacert 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots'
            cand -o 'Output format [default: table on a terminal, plain otherwise]'
            cand --output 'Output format [default: table on a terminal, plain otherwise]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvctl;ls'= {
            cand -p 'Only keys starting with this prefix'
            cand --prefix 'Only keys starting with this prefix'
            cand --server 'URL of the server'
            cand --data-dir 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)'
            cand --token-file 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set'
            cand --cacert 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots'
            cand -o 'Output format [default: table on a terminal, plain otherwise]'
            cand --output 'Output format [default: table on a terminal, plain otherwise]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvctl;stats'= {
            cand --server 'URL of the server'
            cand --data-dir 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)'
            cand --token-file 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set'
            cand --cacert 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots'
            cand -o 'Output format [default: table on a terminal, plain otherwise]'
            cand --output 'Output format [default: table on a terminal, plain otherwise]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvctl;batch'= {
            cand --server 'URL of the server'
            cand --data-dir 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)'
            cand --token-file 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set'
            cand --cacert 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots'
            cand -o 'Output format [default: table on a terminal, plain otherwise]'
            cand --output 'Output format [default: table on a terminal, plain otherwise]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvctl;wal'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand inspect 'Summarise a log (or list its records) without changing it'
            cand compact 'Rewrite the log to the live state only, atomically'
            cand repair 'Cut a corrupt log at its last good record, keeping a backup'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kvctl;wal;inspect'= {
            cand --data-dir 'The data directory holding wal.log'
            cand --key 'With --records: only records of this key'
            cand --prefix 'With --records: only records whose key starts with this'
            cand --limit 'With --records: at most this many records'
            cand -o 'Output format [default: table on a terminal, plain otherwise]'
            cand --output 'Output format [default: table on a terminal, plain otherwise]'
            cand --records 'List records instead of the summary'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvctl;wal;compact'= {
            cand --data-dir 'The data directory holding wal.log'
            cand --server 'Compact the log of the server at this URL while it serves, instead of a stopped data directory'
            cand --token-file 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set'
            cand --cacert 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots'
            cand -o 'Output format [default: table on a terminal, plain otherwise]'
            cand --output 'Output format [default: table on a terminal, plain otherwise]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvctl;wal;repair'= {
            cand --data-dir 'The data directory holding wal.log'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvctl;wal;help'= {
            cand inspect 'Summarise a log (or list its records) without changing it'
            cand compact 'Rewrite the log to the live state only, atomically'
            cand repair 'Cut a corrupt log at its last good record, keeping a backup'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kvctl;wal;help;inspect'= {
        }
        &'kvctl;wal;help;compact'= {
        }
        &'kvctl;wal;help;repair'= {
        }
        &'kvctl;wal;help;help'= {
        }
        &'kvctl;snapshot'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand save 'Write the server''s current state to FILE as a compacted log, atomically'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kvctl;snapshot;save'= {
            cand --server 'URL of the server'
            cand --token-file 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set'
            cand --cacert 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvctl;snapshot;help'= {
            cand save 'Write the server''s current state to FILE as a compacted log, atomically'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kvctl;snapshot;help;save'= {
        }
        &'kvctl;snapshot;help;help'= {
        }
        &'kvctl;bench'= {
            cand --server 'URL of the server'
            cand -w 'What each request does'
            cand --workload 'What each request does'
            cand -c 'Concurrent keep-alive connections'
            cand --clients 'Concurrent keep-alive connections'
            cand -d 'How long to run (e.g. 10s, 1m) [default: 10s unless --requests]'
            cand --duration 'How long to run (e.g. 10s, 1m) [default: 10s unless --requests]'
            cand -n 'Stop after this many requests instead of after a duration'
            cand --requests 'Stop after this many requests instead of after a duration'
            cand --keyspace 'Number of distinct keys'
            cand --value-size 'Bytes of each (string) value written'
            cand --ttl 'ttl of the keys written, in seconds'
            cand --read-ratio 'Share of GETs in the mixed workload'
            cand --batch-size 'Sets per request in the batch workload'
            cand --token-file 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set'
            cand --cacert 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots'
            cand -o 'Output format [default: table on a terminal, plain otherwise]'
            cand --output 'Output format [default: table on a terminal, plain otherwise]'
            cand --preload 'Write every key of the keyspace before measuring'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvctl;completions'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvctl;man'= {
            cand --out-dir 'Write kvctl.1 and one page per subcommand into this directory instead of printing kvctl.1'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'kvctl;help'= {
            cand serve 'Run the HTTP key-value store on a data directory'
            cand get 'Print the value of a key'
            cand put 'Set a key to a value (a string unless --json)'
            cand rm 'Delete a key'
            cand ls 'List keys, optionally only those starting with a prefix'
            cand stats 'Show the number of keys and the bytes their values take'
            cand batch 'Run a batch of set/get/delete operations from a JSON file or stdin'
            cand wal 'Inspect, compact or repair a data directory''s write-ahead log'
            cand snapshot 'Take a consistent backup of a running server''s data'
            cand bench 'Drive a running server with a workload and report throughput and latency'
            cand completions 'Print shell completions for kvctl'
            cand man 'Write kvctl''s man pages'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kvctl;help;serve'= {
        }
        &'kvctl;help;get'= {
        }
        &'kvctl;help;put'= {
        }
        &'kvctl;help;rm'= {
        }
        &'kvctl;help;ls'= {
        }
        &'kvctl;help;stats'= {
        }
        &'kvctl;help;batch'= {
        }
        &'kvctl;help;wal'= {
            cand inspect 'Summarise a log (or list its records) without changing it'
            cand compact 'Rewrite the log to the live state only, atomically'
            cand repair 'Cut a corrupt log at its last good record, keeping a backup'
        }
        &'kvctl;help;wal;inspect'= {
        }
        &'kvctl;help;wal;compact'= {
        }
        &'kvctl;help;wal;repair'= {
        }
        &'kvctl;help;snapshot'= {
            cand save 'Write the server''s current state to FILE as a compacted log, atomically'
        }
        &'kvctl;help;snapshot;save'= {
        }
        &'kvctl;help;bench'= {
        }
        &'kvctl;help;completions'= {
        }
        &'kvctl;help;man'= {
        }
        &'kvctl;help;help'= {
        }
    ]
    $completions[$command]
}
