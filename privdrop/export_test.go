package privdrop

// ResolveIn is Resolve against a given user database, for tests.
var ResolveIn = resolve
