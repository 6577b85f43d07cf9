"""The version protocol: what a store holds and the rules for reading and changing it, written once
over the storage primitives (:mod:`modelstore_core.storage`) for every backend.

* :mod:`.keys`: where each document and object lives;
* :mod:`.records`: the documents as typed values, validated whenever they are read;
* :mod:`.cas`: read-modify-write of one document under concurrent writers;
* :mod:`.commit`: the write path (commit a version, the latest hint, states, delete);
* :mod:`.read`: the read path (domains, versions, latest, records, states).
"""
