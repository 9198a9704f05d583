"""The peer's side of peerfed: a library (``peer.Peer``) and the command's verbs (spec §4-§9, §13.4-§13.6).

Imports go one way: the client builds on ``peerfed.protocol`` (and on the node only in the
demo, which runs two nodes in-process); the node never imports the client.
"""
