"""tinykube CNI: spec 1.0/1.1 plugins (`tinykube-bridge`, `tinykube-host-local`), their resident agent,
and a stdlib-only invoker for runtimes (`cni.invoke`).

Deliberately imports nothing: the plugin executables import `cni.exe` on every call, and whatever this
file pulled in would be paid per pod. Import the submodules you need (`cni.invoke`, `cni.errors`).
"""
