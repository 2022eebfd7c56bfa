"""Hand-written ssh_config files for the differential test against `ssh -G`.

Each case: an id, the files (paths relative to ~/.ssh; `config` is the one given to
`ssh -F`; `{home}` is replaced by the home folder), and the names to look up. They are
shaped like the configs people have: cluster docs, VS Code, OrbStack and Teleport
write includes; admins write wildcard and negated patterns, Match blocks and jumps.
"""

from __future__ import annotations

CASES: list[tuple[str, dict[str, str], list[str]]] = [
    ("basic", {"config": "Host gpu1\n  HostName gpu1.lab.example.org\n  User hal\n  Port 2201\n"},
     ["gpu1", "gpu2"]),
    ("first-block-wins", {"config": """\
Host gpu*
  User first
  Port 2000
Host gpu1
  User second
  Port 3000
  HostName 10.0.0.1
"""}, ["gpu1", "gpu9"]),
    ("star-first-wins-over-later-specific", {"config": """\
Host *
  User everyone
Host gpu1
  User specific
  HostName h1.example
"""}, ["gpu1", "other"]),
    ("trailing-comments", {"config": """\
Host gpu1 # the big box
  User hal # admin
  Port 2222 # not 22
  HostName gpu1.example.org  # the address
Host gpu2
  User hal#x
"""}, ["gpu1", "gpu2"]),
    ("equals-separators", {"config": """\
Host=gpu1
  User=bob
  Port = 2200
  HostName= h.example
Host = gpu2
  User =carol
"""}, ["gpu1", "gpu2"]),
    ("keyword-case", {"config": "HOST gpu1\n  HOSTNAME H.Example\n  user Bob\n  pOrT 2022\n"},
     ["gpu1"]),
    ("quoted-values", {"config": """\
Host "quoted" other
  User "bob"
  HostName "q.example.org"
  Port "2300"
"""}, ["quoted", "other"]),
    ("hostname-tokens", {"config": """\
Host gpu*
  HostName %h.lab.example
Host pct
  HostName 100%%.example
"""}, ["gpu3", "pct"]),
    ("hostname-lowercased", {"config": "Host GPU1\n  HostName GPU1.Lab.EXAMPLE\nHost Mixed\n  User u\n"},
     ["GPU1", "Mixed", "gpu1"]),
    ("question-mark-wildcard", {"config": "Host gpu?\n  User single\nHost gpu??\n  User double\n"},
     ["gpu1", "gpu12", "gpu123"]),
    ("negated-pattern", {"config": """\
Host gpu* !gpu3
  User lab
Host *
  User other
"""}, ["gpu1", "gpu3"]),
    ("negated-only-never-matches", {"config": "Host !gpu1\n  User never\nHost gpu1\n  User one\n"},
     ["gpu1", "gpu2"]),
    ("several-patterns", {"config": "Host a b *.lab c\n  User many\n  Port 2100\n"},
     ["a", "c", "x.lab", "d"]),
    ("include-glob-relative", {
        "config": "Include conf.d/*.conf\nHost *\n  User fallback\n",
        "conf.d/10-gpu.conf": "Host gpu7\n  HostName 10.7.0.7\n  User ten\n  Port 2207\n",
        "conf.d/20-gpu.conf": "Host gpu7 gpu8\n  User twenty\n  Port 2208\n",
        "conf.d/ignored.txt": "Host gpu7\n  User never\n",
    }, ["gpu7", "gpu8", "gpu9"]),
    ("include-tilde", {
        "config": "Include ~/.ssh/extra\nHost gpu1\n  User main\n",
        "extra": "Host gpu1\n  User extra\n  HostName extra.example\n",
    }, ["gpu1"]),
    ("include-absolute", {
        "config": "Include {home}/.ssh/abs.conf\n",
        "abs.conf": "Host gpu1\n  User abs\n  Port 2001\n",
    }, ["gpu1"]),
    ("include-nested", {
        "config": "Include a.conf\n",
        "a.conf": "Include b.conf\nHost gpu1\n  Port 1111\n",
        "b.conf": "Include c.conf\nHost gpu1\n  User from-b\n",
        "c.conf": "Host gpu1\n  HostName from-c.example\n",
    }, ["gpu1"]),
    ("include-inside-host", {
        "config": "Host gpu7\n  Include inner.conf\n  Port 2777\nHost *\n  User outer\n",
        "inner.conf": "User inner\nHost gpu8\n  Port 2888\n",
    }, ["gpu7", "gpu8", "gpu9"]),
    ("include-inside-host-keeps-state", {
        "config": "Host gpu7\n  Include other.conf\n  User after-include\n",
        "other.conf": "Host nomatch\n  Port 9999\n",
    }, ["gpu7", "nomatch"]),
    ("include-inside-match", {
        "config": "Match host gpu*\n  Include m.conf\nHost *\n  Port 2999\n",
        "m.conf": "User matched\nPort 2100\n",
    }, ["gpu1", "cpu1"]),
    ("include-missing-is-ignored", {
        "config": "Include does-not-exist.conf nothing/*.conf\nHost gpu1\n  User ok\n"},
     ["gpu1"]),
    ("include-several-args", {
        "config": "Include one.conf two.conf\n",
        "one.conf": "Host gpu1\n  User one\n",
        "two.conf": "Host gpu1\n  User two\n  Port 2002\n",
    }, ["gpu1"]),
    ("first-wins-main-before-include", {
        "config": "Host gpu1\n  User main\nInclude late.conf\n",
        "late.conf": "Host gpu1\n  User late\n  Port 2345\n",
    }, ["gpu1"]),
    ("first-wins-include-before-main", {
        "config": "Include early.conf\nHost gpu1\n  User main\n  Port 2000\n",
        "early.conf": "Host gpu1\n  User early\n",
    }, ["gpu1"]),
    ("match-host", {"config": "Match host gpu*\n  User matched\nHost *\n  User rest\n"},
     ["gpu1", "cpu1"]),
    ("match-host-sees-hostname", {
        "config": "Host short\n  HostName real.example.org\nMatch host *.example.org\n  User via-hostname\n"},
     ["short", "real.example.org"]),
    ("match-originalhost", {
        "config": "Host short\n  HostName real.example.org\nMatch originalhost short\n  Port 2400\n"},
     ["short"]),
    ("match-user", {"config": "Host gpu1\n  User bob\nMatch user bob\n  Port 2500\nMatch user alice\n  Port 2600\n"},
     ["gpu1", "gpu2"]),
    ("match-localuser", {
        "config": "Match localuser alice\n  User remote-alice\nMatch localuser !alice\n  User nobody\n"},
     ["gpu1"]),
    ("match-localuser-negated", {"config": "Match !localuser alice\n  User never\nHost *\n  User always\n"},
     ["gpu1"]),
    ("match-all", {"config": "Host gpu1\n  User one\nMatch all\n  User all\n  Port 2700\n"},
     ["gpu1", "gpu2"]),
    ("match-final", {"config": """\
Host gpu1
  HostName gpu1.final.example
Match final host *.final.example
  User final-user
Match host gpu2
  User not-final
"""}, ["gpu1", "gpu2"]),
    ("match-canonical-all", {"config": "Match final all\n  Port 2800\nMatch canonical all\n  User canon\n"},
     ["gpu1"]),
    ("match-final-second-pass-host-block", {"config": """\
Host alias
  HostName target.example
Match final
Host target.example
  User seen-in-final-pass
"""}, ["alias"]),
    ("match-negated-host", {"config": "Match !host gpu1\n  User not-gpu1\nHost *\n  User gpu1\n"},
     ["gpu1", "gpu2"]),
    ("match-host-list-with-negation", {"config": 'Match host "gpu*,!gpu2"\n  User listed\n'},
     ["gpu1", "gpu2"]),
    ("match-host-equals", {"config": "Match host=gpu1\n  User eq\n"}, ["gpu1", "gpu2"]),
    ("match-two-criteria", {"config": "Host gpu1\n  User bob\nMatch host gpu* user bob\n  Port 2900\n"},
     ["gpu1", "gpu2"]),
    ("match-case-insensitive-host", {"config": "Match host GPU*\n  User upper\n"}, ["gpu1", "GPU2"]),
    ("proxyjump-one", {"config": """\
Host bastion
  HostName bastion.example.org
  User jump
Host inner
  HostName 10.1.0.5
  ProxyJump bastion
"""}, ["inner", "bastion"]),
    ("proxyjump-several-hops", {"config": """\
Host a
  HostName a.example
  User ua
Host b
  HostName b.example
  Port 2202
Host target
  ProxyJump a,root@b:2022,c
"""}, ["target"]),
    ("proxyjump-none", {"config": "Host gpu1\n  ProxyJump none\nHost * !bastion\n  ProxyJump bastion\n"},
     ["gpu1", "gpu2"]),
    ("proxycommand-none-then-jump", {"config": "Host gpu1\n  ProxyCommand none\n  ProxyJump bastion\n"},
     ["gpu1"]),
    ("proxyjump-first-hop-has-its-own", {"config": """\
Host outer
  HostName outer.example
Host middle
  HostName middle.example
  ProxyJump outer
Host target
  ProxyJump middle
"""}, ["target"]),
    ("proxyjump-later-hop-own-jump-unused", {"config": """\
Host gw
  HostName gw.example
  ProxyJump far
Host first
  HostName first.example
Host target
  ProxyJump first,gw
"""}, ["target"]),
    ("proxyjump-addresses", {"config": """\
Host v4
  ProxyJump 10.0.0.1:2222
Host v6
  ProxyJump admin@[fe80::1]:2200
Host uri
  ProxyJump ssh://ops@gw.example:2022
"""}, ["v4", "v6", "uri"]),
    ("proxyjump-comment", {"config": "Host gpu1\n  ProxyJump bastion # via the gate\n"}, ["gpu1"]),
    ("port-first-wins-across-host-and-match", {"config": "Host gpu1\n  Port 2001\nMatch all\n  Port 2002\n"},
     ["gpu1", "gpu2"]),
    ("whitespace-and-blank-lines", {"config": "\n\t# a comment\n\nHost\tgpu1\n\tUser\ttabbed\n   \n  Port   2121  \n"},
     ["gpu1"]),
    ("crlf-line-ends", {"config": "Host gpu1\r\n  User windows\r\n  Port 2323\r\n"}, ["gpu1"]),
    ("teleport-style", {
        "config": "Include ~/.tsh/config/*.conf\nHost *\n  User alice-default\n",
        "../.tsh/config/teleport.conf": """\
# Common flags for all teleport.example.com hosts
Host *.teleport.example.com teleport.example.com
    UserKnownHostsFile "{home}/.tsh/known_hosts"
    IdentityFile "{home}/.tsh/keys/teleport.example.com/alice"
    CertificateFile "{home}/.tsh/keys/teleport.example.com/alice-ssh/teleport-cert.pub"
    HostKeyAlgorithms ssh-ed25519-cert-v01@openssh.com
Host *.teleport.example.com !teleport.example.com
    Port 3022
    User ubuntu
""",
    }, ["node1.teleport.example.com", "teleport.example.com"]),
    ("orbstack-vscode-style", {
        "config": "# Added by OrbStack\nInclude ~/.orbstack/ssh/config\n\nHost dev-box\n  HostName 192.168.1.20\n  User coder\n",
        "../.orbstack/ssh/config": "Host orb\n  Hostname 127.0.0.1\n  Port 32222\n  User default\n",
    }, ["orb", "dev-box"]),
    ("match-originalhost-case", {"config": "Match originalhost GPU1\n  User orig\n"}, ["GPU1", "gpu1"]),
    ("match-sees-hostname-from-match", {
        "config": "Match host gpu1\n  HostName other\nMatch host other\n  User seen\n"}, ["gpu1"]),
    ("match-user-sees-only-earlier-user", {
        "config": "Match user bob\n  Port 2001\nHost *\n  User bob\nMatch user bob\n  Port 2002\n"},
     ["gpu1"]),
    ("include-quoted-path-with-space", {
        "config": 'Include "with space.conf"\n', "with space.conf": "Host gpu1\n  User spaced\n"},
     ["gpu1"]),
    ("hostname-ipv6", {"config": "Host gpu1\n  HostName ::1\n"}, ["gpu1"]),
    ("host-line-comment-and-double-token", {"config": "Host gpu1 # c\n  Hostname %h%h\n"}, ["gpu1"]),
    ("match-all-comment", {"config": "Match all # c\n  User allc\n"}, ["gpu1"]),
    ("match-keyword-case-and-negated-user", {
        "config": "Match Host gpu1 !User alice\n  User notalice\nMatch HOST gpu1\n  Port 2\n"},
     ["gpu1"]),
    ("backslash-space-and-single-quotes", {
        "config": "Host 'gpu1'\n  User a\\ b\nHost gpu2\n  User 'two'\n"}, ["gpu1", "gpu2"]),
    ("proxyjump-none-first-wins", {
        "config": "Host gpu1\n  ProxyJump none\n  ProxyJump gw\nHost gpu2\n  ProxyJump NONE\n"},
     ["gpu1", "gpu2"]),
    ("port-leading-zero", {"config": "Host gpu1\n  Port 022\n"}, ["gpu1"]),
    ("match-final-host-address", {
        "config": "Host gpu1\n  HostName 10.0.0.1\nMatch final host 10.0.0.*\n  User ip\n"},
     ["gpu1"]),
    ("match-canonical-with-final", {"config": "Match canonical\n  User canon\nMatch final\n"},
     ["gpu1"]),
    ("proxyjump-hop-with-proxycommand-none", {
        "config": "Host gpu1\n  ProxyJump gw\nHost gw\n  ProxyCommand none\n  User gwuser\n"},
     ["gpu1"]),
    ("include-after-a-host-block-belongs-to-it", {
        "config": "Host bastion\n  User jump\nInclude config.d/*.conf\nHost *\n  User alice2\n",
        "config.d/cluster.conf": "Host gpu7\n  HostName gpu7.cluster\n  Port 2207\n",
    }, ["gpu7", "bastion"]),
]  # fmt: skip
