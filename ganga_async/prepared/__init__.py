"""The prepared state of applications: ShareDirs (the copies a prepared application runs), the
ShareRef actor that owns their reference counts, and the box of named objects that may hold
references too. These get the repository and the shared area they need, never the engine."""
