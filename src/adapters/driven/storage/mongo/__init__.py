"""MongoDB adapters (production cache store and ticket log), written against the collection methods
motor and PyMongo's AsyncMongoClient share."""
