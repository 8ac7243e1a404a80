import Foundation

/// Where the sample keeps its consent database: `Application Support/ConsentKit/consent.db`.
/// Application Support is private to the app, not shown in the Files app, and backed up (the
/// consent record must survive a device restore). Not an App Group container: the record is the
/// app's own, and a file in a shared container risks 0xDEAD10CC terminations.
public enum StoreLocation {
    /// The database file inside `base` (the folder `ConsentKit` is created if missing).
    public static func databaseURL(in base: URL, fileManager: FileManager = .default) throws -> URL {
        let folder = base.appendingPathComponent("ConsentKit", isDirectory: true)
        try fileManager.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder.appendingPathComponent("consent.db")
    }

    /// The database file in this app's Application Support folder (created if missing).
    public static func applicationSupportDatabaseURL(fileManager: FileManager = .default) throws -> URL {
        let base = try fileManager.url(for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
        return try databaseURL(in: base, fileManager: fileManager)
    }
}
