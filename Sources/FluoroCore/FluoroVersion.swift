/// FluoroStream's version, as `fluoro --version` prints it (semantic versioning).
public enum FluoroVersion {
    public static let string = "0.9.0"
}
