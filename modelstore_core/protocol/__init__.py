"""The version protocol: what a store holds and the rules for reading and changing it, written once
over the storage primitives (:mod:`modelstore_core.storage`) for every backend.

* :mod:`.keys`: where each document and object lives;
* :mod:`.records`: the documents as typed values, validated whenever they are read;
* :mod:`.limits`: how large each document may be, and the bounded read every document goes through;
* :mod:`.cas`: read-modify-write of one document under concurrent writers;
* :mod:`.commit`: the write path (commit a version, from an upload or copied from another store;
  the latest hint, states, signatures, delete);
* :mod:`.read`: the read path (domains, versions, latest, records, states);
* :mod:`.summary`: the per-domain summary of versions that search reads instead of every record;
* :mod:`.probe`: the proof, once per store, that the server honours conditional writes.

Nothing outside this package writes a store's documents; objects are deleted only by ``gc`` and
``verify --repair``.
"""
