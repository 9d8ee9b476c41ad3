"""Fleet view: which runtimes (SDK clients, gateway replicas) serve which version of a bundle, and
whether a change (a rollback above all) has reached them."""
