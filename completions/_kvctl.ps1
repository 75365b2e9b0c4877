
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'kvctl' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'kvctl'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'kvctl' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the HTTP key-value store on a data directory')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Print the value of a key')
            [CompletionResult]::new('put', 'put', [CompletionResultType]::ParameterValue, 'Set a key to a value (a string unless --json)')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Delete a key')
            [CompletionResult]::new('del', 'del', [CompletionResultType]::ParameterValue, 'Delete a key')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List keys, optionally only those starting with a prefix')
            [CompletionResult]::new('stats', 'stats', [CompletionResultType]::ParameterValue, 'Show the number of keys and the bytes their values take')
            [CompletionResult]::new('batch', 'batch', [CompletionResultType]::ParameterValue, 'Run a batch of set/get/delete operations from a JSON file or stdin')
            [CompletionResult]::new('wal', 'wal', [CompletionResultType]::ParameterValue, 'Inspect, compact or repair a data directory''s write-ahead log')
            [CompletionResult]::new('snapshot', 'snapshot', [CompletionResultType]::ParameterValue, 'Take a consistent backup of a running server''s data')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Drive a running server with a workload and report throughput and latency')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions for kvctl')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write kvctl''s man pages')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kvctl;serve' {
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port to listen on')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Directory holding wal.log; created if missing')
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'Address to bind; the default accepts local connections only')
            [CompletionResult]::new('--fsync', '--fsync', [CompletionResultType]::ParameterName, 'When writes are forced to disk before they are acknowledged')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Log filter: a level (error, warn, info, debug, trace, off) and/or target=level directives, comma-separated; overrides RUST_LOG')
            [CompletionResult]::new('--max-key-bytes', '--max-key-bytes', [CompletionResultType]::ParameterName, 'Longest key accepted, in bytes')
            [CompletionResult]::new('--max-body-bytes', '--max-body-bytes', [CompletionResultType]::ParameterName, 'Largest request body accepted, in bytes')
            [CompletionResult]::new('--max-batch-ops', '--max-batch-ops', [CompletionResultType]::ParameterName, 'Most operations accepted in one batch')
            [CompletionResult]::new('--compact-min-bytes', '--compact-min-bytes', [CompletionResultType]::ParameterName, 'Compact the log by itself only once it is at least this large, in bytes; 0 turns automatic compaction off')
            [CompletionResult]::new('--compact-ratio', '--compact-ratio', [CompletionResultType]::ParameterName, '...and has grown to this many times its size after the last compaction (or at start)')
            [CompletionResult]::new('--auth-token-file', '--auth-token-file', [CompletionResultType]::ParameterName, 'Require `Authorization: Bearer <token>` on every request but GET /health, with the token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set')
            [CompletionResult]::new('--tls-cert', '--tls-cert', [CompletionResultType]::ParameterName, 'Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key')
            [CompletionResult]::new('--tls-key', '--tls-key', [CompletionResultType]::ParameterName, 'The PEM private key of --tls-cert')
            [CompletionResult]::new('--header-timeout', '--header-timeout', [CompletionResultType]::ParameterName, 'Close a connection that has not sent a complete request head this long after connecting (TLS handshake included) or after its first byte')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Close a kept-alive connection that sends no new request for this long')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Answer 503 to a request not answered within this long after its head arrived (a write in it is applied whole or not at all)')
            [CompletionResult]::new('--max-connections', '--max-connections', [CompletionResultType]::ParameterName, 'Most connections open at once; more wait to be accepted. Lowered to what the open-file limit allows')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvctl;get' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'URL of the server')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvctl;put' {
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Expire the key after this many seconds')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'URL of the server')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Parse VALUE as JSON (`kvctl put n 42 --json` stores a number)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvctl;rm' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'URL of the server')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvctl;del' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'URL of the server')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvctl;ls' {
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Only keys starting with this prefix')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Only keys starting with this prefix')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'URL of the server')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvctl;stats' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'URL of the server')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvctl;batch' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'URL of the server')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Work on this data directory directly instead of a server (reads work while a server runs; writes need the directory free)')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvctl;wal' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Summarise a log (or list its records) without changing it')
            [CompletionResult]::new('compact', 'compact', [CompletionResultType]::ParameterValue, 'Rewrite the log to the live state only, atomically')
            [CompletionResult]::new('repair', 'repair', [CompletionResultType]::ParameterValue, 'Cut a corrupt log at its last good record, keeping a backup')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kvctl;wal;inspect' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The data directory holding wal.log')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'With --records: only records of this key')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'With --records: only records whose key starts with this')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'With --records: at most this many records')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('--records', '--records', [CompletionResultType]::ParameterName, 'List records instead of the summary')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvctl;wal;compact' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The data directory holding wal.log')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Compact the log of the server at this URL while it serves, instead of a stopped data directory')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvctl;wal;repair' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The data directory holding wal.log')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvctl;wal;help' {
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Summarise a log (or list its records) without changing it')
            [CompletionResult]::new('compact', 'compact', [CompletionResultType]::ParameterValue, 'Rewrite the log to the live state only, atomically')
            [CompletionResult]::new('repair', 'repair', [CompletionResultType]::ParameterValue, 'Cut a corrupt log at its last good record, keeping a backup')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kvctl;wal;help;inspect' {
            break
        }
        'kvctl;wal;help;compact' {
            break
        }
        'kvctl;wal;help;repair' {
            break
        }
        'kvctl;wal;help;help' {
            break
        }
        'kvctl;snapshot' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('save', 'save', [CompletionResultType]::ParameterValue, 'Write the server''s current state to FILE as a compacted log, atomically')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kvctl;snapshot;save' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'URL of the server')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvctl;snapshot;help' {
            [CompletionResult]::new('save', 'save', [CompletionResultType]::ParameterValue, 'Write the server''s current state to FILE as a compacted log, atomically')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kvctl;snapshot;help;save' {
            break
        }
        'kvctl;snapshot;help;help' {
            break
        }
        'kvctl;bench' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'URL of the server')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'What each request does')
            [CompletionResult]::new('--workload', '--workload', [CompletionResultType]::ParameterName, 'What each request does')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Concurrent keep-alive connections')
            [CompletionResult]::new('--clients', '--clients', [CompletionResultType]::ParameterName, 'Concurrent keep-alive connections')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'How long to run (e.g. 10s, 1m) [default: 10s unless --requests]')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'How long to run (e.g. 10s, 1m) [default: 10s unless --requests]')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Stop after this many requests instead of after a duration')
            [CompletionResult]::new('--requests', '--requests', [CompletionResultType]::ParameterName, 'Stop after this many requests instead of after a duration')
            [CompletionResult]::new('--keyspace', '--keyspace', [CompletionResultType]::ParameterName, 'Number of distinct keys')
            [CompletionResult]::new('--value-size', '--value-size', [CompletionResultType]::ParameterName, 'Bytes of each (string) value written')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'ttl of the keys written, in seconds')
            [CompletionResult]::new('--read-ratio', '--read-ratio', [CompletionResultType]::ParameterName, 'Share of GETs in the mixed workload')
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Sets per request in the batch workload')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Send the bearer token in this file (one trailing newline ignored); without it, the token is $KVCTL_AUTH_TOKEN if set')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'Trust the CA certificates in this PEM file for an https:// server, besides the public roots')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, plain otherwise]')
            [CompletionResult]::new('--preload', '--preload', [CompletionResultType]::ParameterName, 'Write every key of the keyspace before measuring')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvctl;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvctl;man' {
            [CompletionResult]::new('--out-dir', '--out-dir', [CompletionResultType]::ParameterName, 'Write kvctl.1 and one page per subcommand into this directory instead of printing kvctl.1')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'kvctl;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the HTTP key-value store on a data directory')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Print the value of a key')
            [CompletionResult]::new('put', 'put', [CompletionResultType]::ParameterValue, 'Set a key to a value (a string unless --json)')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Delete a key')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List keys, optionally only those starting with a prefix')
            [CompletionResult]::new('stats', 'stats', [CompletionResultType]::ParameterValue, 'Show the number of keys and the bytes their values take')
            [CompletionResult]::new('batch', 'batch', [CompletionResultType]::ParameterValue, 'Run a batch of set/get/delete operations from a JSON file or stdin')
            [CompletionResult]::new('wal', 'wal', [CompletionResultType]::ParameterValue, 'Inspect, compact or repair a data directory''s write-ahead log')
            [CompletionResult]::new('snapshot', 'snapshot', [CompletionResultType]::ParameterValue, 'Take a consistent backup of a running server''s data')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Drive a running server with a workload and report throughput and latency')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions for kvctl')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write kvctl''s man pages')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kvctl;help;serve' {
            break
        }
        'kvctl;help;get' {
            break
        }
        'kvctl;help;put' {
            break
        }
        'kvctl;help;rm' {
            break
        }
        'kvctl;help;ls' {
            break
        }
        'kvctl;help;stats' {
            break
        }
        'kvctl;help;batch' {
            break
        }
        'kvctl;help;wal' {
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Summarise a log (or list its records) without changing it')
            [CompletionResult]::new('compact', 'compact', [CompletionResultType]::ParameterValue, 'Rewrite the log to the live state only, atomically')
            [CompletionResult]::new('repair', 'repair', [CompletionResultType]::ParameterValue, 'Cut a corrupt log at its last good record, keeping a backup')
            break
        }
        'kvctl;help;wal;inspect' {
            break
        }
        'kvctl;help;wal;compact' {
            break
        }
        'kvctl;help;wal;repair' {
            break
        }
        'kvctl;help;snapshot' {
            [CompletionResult]::new('save', 'save', [CompletionResultType]::ParameterValue, 'Write the server''s current state to FILE as a compacted log, atomically')
            break
        }
        'kvctl;help;snapshot;save' {
            break
        }
        'kvctl;help;bench' {
            break
        }
        'kvctl;help;completions' {
            break
        }
        'kvctl;help;man' {
            break
        }
        'kvctl;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
