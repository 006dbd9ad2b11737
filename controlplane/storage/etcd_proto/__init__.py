"""etcd v3 wire definitions (etcd_rpc.proto), compiled at first use by controlplane.storage.etcd."""
