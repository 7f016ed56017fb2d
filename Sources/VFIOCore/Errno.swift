/// An error number, as the kernel returns it from an ioctl (positive).
///
/// One type serves the model, the kernel adapter and the trace language, so
/// an answer prints and compares the same whichever backend produced it.
/// The values are Linux's (asm-generic/errno-base.h and errno.h, which x86-64
/// and arm64 both use).
public struct Errno: RawRepresentable, Hashable, Sendable, Error, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The C name (`EINVAL`), or `errno N` for a number Linux does not name.
    public var description: String { Errno.nameByValue[rawValue] ?? "errno \(rawValue)" }

    /// The errno called `name` (`EINVAL`, also the aliases `EWOULDBLOCK`,
    /// `EDEADLOCK` and `ENOTSUP`), or nil.
    public init?(name: String) {
        guard let value = Errno.valueByName[name] else { return nil }
        self.rawValue = value
    }

    /// Every name the trace language accepts, in numeric order.
    public static var allNames: [String] { table.map { $0.0 } + aliases.map { $0.0 } }

    /// The corresponding C error is `EPERM`.
    public static let EPERM = Errno(rawValue: 1)
    /// The corresponding C error is `ENOENT`.
    public static let ENOENT = Errno(rawValue: 2)
    /// The corresponding C error is `ESRCH`.
    public static let ESRCH = Errno(rawValue: 3)
    /// The corresponding C error is `EINTR`.
    public static let EINTR = Errno(rawValue: 4)
    /// The corresponding C error is `EIO`.
    public static let EIO = Errno(rawValue: 5)
    /// The corresponding C error is `ENXIO`.
    public static let ENXIO = Errno(rawValue: 6)
    /// The corresponding C error is `E2BIG`.
    public static let E2BIG = Errno(rawValue: 7)
    /// The corresponding C error is `ENOEXEC`.
    public static let ENOEXEC = Errno(rawValue: 8)
    /// The corresponding C error is `EBADF`.
    public static let EBADF = Errno(rawValue: 9)
    /// The corresponding C error is `ECHILD`.
    public static let ECHILD = Errno(rawValue: 10)
    /// The corresponding C error is `EAGAIN`.
    public static let EAGAIN = Errno(rawValue: 11)
    /// The corresponding C error is `ENOMEM`.
    public static let ENOMEM = Errno(rawValue: 12)
    /// The corresponding C error is `EACCES`.
    public static let EACCES = Errno(rawValue: 13)
    /// The corresponding C error is `EFAULT`.
    public static let EFAULT = Errno(rawValue: 14)
    /// The corresponding C error is `ENOTBLK`.
    public static let ENOTBLK = Errno(rawValue: 15)
    /// The corresponding C error is `EBUSY`.
    public static let EBUSY = Errno(rawValue: 16)
    /// The corresponding C error is `EEXIST`.
    public static let EEXIST = Errno(rawValue: 17)
    /// The corresponding C error is `EXDEV`.
    public static let EXDEV = Errno(rawValue: 18)
    /// The corresponding C error is `ENODEV`.
    public static let ENODEV = Errno(rawValue: 19)
    /// The corresponding C error is `ENOTDIR`.
    public static let ENOTDIR = Errno(rawValue: 20)
    /// The corresponding C error is `EISDIR`.
    public static let EISDIR = Errno(rawValue: 21)
    /// The corresponding C error is `EINVAL`.
    public static let EINVAL = Errno(rawValue: 22)
    /// The corresponding C error is `ENFILE`.
    public static let ENFILE = Errno(rawValue: 23)
    /// The corresponding C error is `EMFILE`.
    public static let EMFILE = Errno(rawValue: 24)
    /// The corresponding C error is `ENOTTY`.
    public static let ENOTTY = Errno(rawValue: 25)
    /// The corresponding C error is `ETXTBSY`.
    public static let ETXTBSY = Errno(rawValue: 26)
    /// The corresponding C error is `EFBIG`.
    public static let EFBIG = Errno(rawValue: 27)
    /// The corresponding C error is `ENOSPC`.
    public static let ENOSPC = Errno(rawValue: 28)
    /// The corresponding C error is `ESPIPE`.
    public static let ESPIPE = Errno(rawValue: 29)
    /// The corresponding C error is `EROFS`.
    public static let EROFS = Errno(rawValue: 30)
    /// The corresponding C error is `EMLINK`.
    public static let EMLINK = Errno(rawValue: 31)
    /// The corresponding C error is `EPIPE`.
    public static let EPIPE = Errno(rawValue: 32)
    /// The corresponding C error is `EDOM`.
    public static let EDOM = Errno(rawValue: 33)
    /// The corresponding C error is `ERANGE`.
    public static let ERANGE = Errno(rawValue: 34)
    /// The corresponding C error is `EDEADLK`.
    public static let EDEADLK = Errno(rawValue: 35)
    /// The corresponding C error is `ENAMETOOLONG`.
    public static let ENAMETOOLONG = Errno(rawValue: 36)
    /// The corresponding C error is `ENOLCK`.
    public static let ENOLCK = Errno(rawValue: 37)
    /// The corresponding C error is `ENOSYS`.
    public static let ENOSYS = Errno(rawValue: 38)
    /// The corresponding C error is `ENOTEMPTY`.
    public static let ENOTEMPTY = Errno(rawValue: 39)
    /// The corresponding C error is `ELOOP`.
    public static let ELOOP = Errno(rawValue: 40)
    /// The corresponding C error is `ENOMSG`.
    public static let ENOMSG = Errno(rawValue: 42)
    /// The corresponding C error is `EIDRM`.
    public static let EIDRM = Errno(rawValue: 43)
    /// The corresponding C error is `ECHRNG`.
    public static let ECHRNG = Errno(rawValue: 44)
    /// The corresponding C error is `EL2NSYNC`.
    public static let EL2NSYNC = Errno(rawValue: 45)
    /// The corresponding C error is `EL3HLT`.
    public static let EL3HLT = Errno(rawValue: 46)
    /// The corresponding C error is `EL3RST`.
    public static let EL3RST = Errno(rawValue: 47)
    /// The corresponding C error is `ELNRNG`.
    public static let ELNRNG = Errno(rawValue: 48)
    /// The corresponding C error is `EUNATCH`.
    public static let EUNATCH = Errno(rawValue: 49)
    /// The corresponding C error is `ENOCSI`.
    public static let ENOCSI = Errno(rawValue: 50)
    /// The corresponding C error is `EL2HLT`.
    public static let EL2HLT = Errno(rawValue: 51)
    /// The corresponding C error is `EBADE`.
    public static let EBADE = Errno(rawValue: 52)
    /// The corresponding C error is `EBADR`.
    public static let EBADR = Errno(rawValue: 53)
    /// The corresponding C error is `EXFULL`.
    public static let EXFULL = Errno(rawValue: 54)
    /// The corresponding C error is `ENOANO`.
    public static let ENOANO = Errno(rawValue: 55)
    /// The corresponding C error is `EBADRQC`.
    public static let EBADRQC = Errno(rawValue: 56)
    /// The corresponding C error is `EBADSLT`.
    public static let EBADSLT = Errno(rawValue: 57)
    /// The corresponding C error is `EBFONT`.
    public static let EBFONT = Errno(rawValue: 59)
    /// The corresponding C error is `ENOSTR`.
    public static let ENOSTR = Errno(rawValue: 60)
    /// The corresponding C error is `ENODATA`.
    public static let ENODATA = Errno(rawValue: 61)
    /// The corresponding C error is `ETIME`.
    public static let ETIME = Errno(rawValue: 62)
    /// The corresponding C error is `ENOSR`.
    public static let ENOSR = Errno(rawValue: 63)
    /// The corresponding C error is `ENONET`.
    public static let ENONET = Errno(rawValue: 64)
    /// The corresponding C error is `ENOPKG`.
    public static let ENOPKG = Errno(rawValue: 65)
    /// The corresponding C error is `EREMOTE`.
    public static let EREMOTE = Errno(rawValue: 66)
    /// The corresponding C error is `ENOLINK`.
    public static let ENOLINK = Errno(rawValue: 67)
    /// The corresponding C error is `EADV`.
    public static let EADV = Errno(rawValue: 68)
    /// The corresponding C error is `ESRMNT`.
    public static let ESRMNT = Errno(rawValue: 69)
    /// The corresponding C error is `ECOMM`.
    public static let ECOMM = Errno(rawValue: 70)
    /// The corresponding C error is `EPROTO`.
    public static let EPROTO = Errno(rawValue: 71)
    /// The corresponding C error is `EMULTIHOP`.
    public static let EMULTIHOP = Errno(rawValue: 72)
    /// The corresponding C error is `EDOTDOT`.
    public static let EDOTDOT = Errno(rawValue: 73)
    /// The corresponding C error is `EBADMSG`.
    public static let EBADMSG = Errno(rawValue: 74)
    /// The corresponding C error is `EOVERFLOW`.
    public static let EOVERFLOW = Errno(rawValue: 75)
    /// The corresponding C error is `ENOTUNIQ`.
    public static let ENOTUNIQ = Errno(rawValue: 76)
    /// The corresponding C error is `EBADFD`.
    public static let EBADFD = Errno(rawValue: 77)
    /// The corresponding C error is `EREMCHG`.
    public static let EREMCHG = Errno(rawValue: 78)
    /// The corresponding C error is `ELIBACC`.
    public static let ELIBACC = Errno(rawValue: 79)
    /// The corresponding C error is `ELIBBAD`.
    public static let ELIBBAD = Errno(rawValue: 80)
    /// The corresponding C error is `ELIBSCN`.
    public static let ELIBSCN = Errno(rawValue: 81)
    /// The corresponding C error is `ELIBMAX`.
    public static let ELIBMAX = Errno(rawValue: 82)
    /// The corresponding C error is `ELIBEXEC`.
    public static let ELIBEXEC = Errno(rawValue: 83)
    /// The corresponding C error is `EILSEQ`.
    public static let EILSEQ = Errno(rawValue: 84)
    /// The corresponding C error is `ERESTART`.
    public static let ERESTART = Errno(rawValue: 85)
    /// The corresponding C error is `ESTRPIPE`.
    public static let ESTRPIPE = Errno(rawValue: 86)
    /// The corresponding C error is `EUSERS`.
    public static let EUSERS = Errno(rawValue: 87)
    /// The corresponding C error is `ENOTSOCK`.
    public static let ENOTSOCK = Errno(rawValue: 88)
    /// The corresponding C error is `EDESTADDRREQ`.
    public static let EDESTADDRREQ = Errno(rawValue: 89)
    /// The corresponding C error is `EMSGSIZE`.
    public static let EMSGSIZE = Errno(rawValue: 90)
    /// The corresponding C error is `EPROTOTYPE`.
    public static let EPROTOTYPE = Errno(rawValue: 91)
    /// The corresponding C error is `ENOPROTOOPT`.
    public static let ENOPROTOOPT = Errno(rawValue: 92)
    /// The corresponding C error is `EPROTONOSUPPORT`.
    public static let EPROTONOSUPPORT = Errno(rawValue: 93)
    /// The corresponding C error is `ESOCKTNOSUPPORT`.
    public static let ESOCKTNOSUPPORT = Errno(rawValue: 94)
    /// The corresponding C error is `EOPNOTSUPP`.
    public static let EOPNOTSUPP = Errno(rawValue: 95)
    /// The corresponding C error is `EPFNOSUPPORT`.
    public static let EPFNOSUPPORT = Errno(rawValue: 96)
    /// The corresponding C error is `EAFNOSUPPORT`.
    public static let EAFNOSUPPORT = Errno(rawValue: 97)
    /// The corresponding C error is `EADDRINUSE`.
    public static let EADDRINUSE = Errno(rawValue: 98)
    /// The corresponding C error is `EADDRNOTAVAIL`.
    public static let EADDRNOTAVAIL = Errno(rawValue: 99)
    /// The corresponding C error is `ENETDOWN`.
    public static let ENETDOWN = Errno(rawValue: 100)
    /// The corresponding C error is `ENETUNREACH`.
    public static let ENETUNREACH = Errno(rawValue: 101)
    /// The corresponding C error is `ENETRESET`.
    public static let ENETRESET = Errno(rawValue: 102)
    /// The corresponding C error is `ECONNABORTED`.
    public static let ECONNABORTED = Errno(rawValue: 103)
    /// The corresponding C error is `ECONNRESET`.
    public static let ECONNRESET = Errno(rawValue: 104)
    /// The corresponding C error is `ENOBUFS`.
    public static let ENOBUFS = Errno(rawValue: 105)
    /// The corresponding C error is `EISCONN`.
    public static let EISCONN = Errno(rawValue: 106)
    /// The corresponding C error is `ENOTCONN`.
    public static let ENOTCONN = Errno(rawValue: 107)
    /// The corresponding C error is `ESHUTDOWN`.
    public static let ESHUTDOWN = Errno(rawValue: 108)
    /// The corresponding C error is `ETOOMANYREFS`.
    public static let ETOOMANYREFS = Errno(rawValue: 109)
    /// The corresponding C error is `ETIMEDOUT`.
    public static let ETIMEDOUT = Errno(rawValue: 110)
    /// The corresponding C error is `ECONNREFUSED`.
    public static let ECONNREFUSED = Errno(rawValue: 111)
    /// The corresponding C error is `EHOSTDOWN`.
    public static let EHOSTDOWN = Errno(rawValue: 112)
    /// The corresponding C error is `EHOSTUNREACH`.
    public static let EHOSTUNREACH = Errno(rawValue: 113)
    /// The corresponding C error is `EALREADY`.
    public static let EALREADY = Errno(rawValue: 114)
    /// The corresponding C error is `EINPROGRESS`.
    public static let EINPROGRESS = Errno(rawValue: 115)
    /// The corresponding C error is `ESTALE`.
    public static let ESTALE = Errno(rawValue: 116)
    /// The corresponding C error is `EUCLEAN`.
    public static let EUCLEAN = Errno(rawValue: 117)
    /// The corresponding C error is `ENOTNAM`.
    public static let ENOTNAM = Errno(rawValue: 118)
    /// The corresponding C error is `ENAVAIL`.
    public static let ENAVAIL = Errno(rawValue: 119)
    /// The corresponding C error is `EISNAM`.
    public static let EISNAM = Errno(rawValue: 120)
    /// The corresponding C error is `EREMOTEIO`.
    public static let EREMOTEIO = Errno(rawValue: 121)
    /// The corresponding C error is `EDQUOT`.
    public static let EDQUOT = Errno(rawValue: 122)
    /// The corresponding C error is `ENOMEDIUM`.
    public static let ENOMEDIUM = Errno(rawValue: 123)
    /// The corresponding C error is `EMEDIUMTYPE`.
    public static let EMEDIUMTYPE = Errno(rawValue: 124)
    /// The corresponding C error is `ECANCELED`.
    public static let ECANCELED = Errno(rawValue: 125)
    /// The corresponding C error is `ENOKEY`.
    public static let ENOKEY = Errno(rawValue: 126)
    /// The corresponding C error is `EKEYEXPIRED`.
    public static let EKEYEXPIRED = Errno(rawValue: 127)
    /// The corresponding C error is `EKEYREVOKED`.
    public static let EKEYREVOKED = Errno(rawValue: 128)
    /// The corresponding C error is `EKEYREJECTED`.
    public static let EKEYREJECTED = Errno(rawValue: 129)
    /// The corresponding C error is `EOWNERDEAD`.
    public static let EOWNERDEAD = Errno(rawValue: 130)
    /// The corresponding C error is `ENOTRECOVERABLE`.
    public static let ENOTRECOVERABLE = Errno(rawValue: 131)
    /// The corresponding C error is `ERFKILL`.
    public static let ERFKILL = Errno(rawValue: 132)
    /// The corresponding C error is `EHWPOISON`.
    public static let EHWPOISON = Errno(rawValue: 133)

    static let table: [(String, Int32)] = [
        ("EPERM", 1),
        ("ENOENT", 2),
        ("ESRCH", 3),
        ("EINTR", 4),
        ("EIO", 5),
        ("ENXIO", 6),
        ("E2BIG", 7),
        ("ENOEXEC", 8),
        ("EBADF", 9),
        ("ECHILD", 10),
        ("EAGAIN", 11),
        ("ENOMEM", 12),
        ("EACCES", 13),
        ("EFAULT", 14),
        ("ENOTBLK", 15),
        ("EBUSY", 16),
        ("EEXIST", 17),
        ("EXDEV", 18),
        ("ENODEV", 19),
        ("ENOTDIR", 20),
        ("EISDIR", 21),
        ("EINVAL", 22),
        ("ENFILE", 23),
        ("EMFILE", 24),
        ("ENOTTY", 25),
        ("ETXTBSY", 26),
        ("EFBIG", 27),
        ("ENOSPC", 28),
        ("ESPIPE", 29),
        ("EROFS", 30),
        ("EMLINK", 31),
        ("EPIPE", 32),
        ("EDOM", 33),
        ("ERANGE", 34),
        ("EDEADLK", 35),
        ("ENAMETOOLONG", 36),
        ("ENOLCK", 37),
        ("ENOSYS", 38),
        ("ENOTEMPTY", 39),
        ("ELOOP", 40),
        ("ENOMSG", 42),
        ("EIDRM", 43),
        ("ECHRNG", 44),
        ("EL2NSYNC", 45),
        ("EL3HLT", 46),
        ("EL3RST", 47),
        ("ELNRNG", 48),
        ("EUNATCH", 49),
        ("ENOCSI", 50),
        ("EL2HLT", 51),
        ("EBADE", 52),
        ("EBADR", 53),
        ("EXFULL", 54),
        ("ENOANO", 55),
        ("EBADRQC", 56),
        ("EBADSLT", 57),
        ("EBFONT", 59),
        ("ENOSTR", 60),
        ("ENODATA", 61),
        ("ETIME", 62),
        ("ENOSR", 63),
        ("ENONET", 64),
        ("ENOPKG", 65),
        ("EREMOTE", 66),
        ("ENOLINK", 67),
        ("EADV", 68),
        ("ESRMNT", 69),
        ("ECOMM", 70),
        ("EPROTO", 71),
        ("EMULTIHOP", 72),
        ("EDOTDOT", 73),
        ("EBADMSG", 74),
        ("EOVERFLOW", 75),
        ("ENOTUNIQ", 76),
        ("EBADFD", 77),
        ("EREMCHG", 78),
        ("ELIBACC", 79),
        ("ELIBBAD", 80),
        ("ELIBSCN", 81),
        ("ELIBMAX", 82),
        ("ELIBEXEC", 83),
        ("EILSEQ", 84),
        ("ERESTART", 85),
        ("ESTRPIPE", 86),
        ("EUSERS", 87),
        ("ENOTSOCK", 88),
        ("EDESTADDRREQ", 89),
        ("EMSGSIZE", 90),
        ("EPROTOTYPE", 91),
        ("ENOPROTOOPT", 92),
        ("EPROTONOSUPPORT", 93),
        ("ESOCKTNOSUPPORT", 94),
        ("EOPNOTSUPP", 95),
        ("EPFNOSUPPORT", 96),
        ("EAFNOSUPPORT", 97),
        ("EADDRINUSE", 98),
        ("EADDRNOTAVAIL", 99),
        ("ENETDOWN", 100),
        ("ENETUNREACH", 101),
        ("ENETRESET", 102),
        ("ECONNABORTED", 103),
        ("ECONNRESET", 104),
        ("ENOBUFS", 105),
        ("EISCONN", 106),
        ("ENOTCONN", 107),
        ("ESHUTDOWN", 108),
        ("ETOOMANYREFS", 109),
        ("ETIMEDOUT", 110),
        ("ECONNREFUSED", 111),
        ("EHOSTDOWN", 112),
        ("EHOSTUNREACH", 113),
        ("EALREADY", 114),
        ("EINPROGRESS", 115),
        ("ESTALE", 116),
        ("EUCLEAN", 117),
        ("ENOTNAM", 118),
        ("ENAVAIL", 119),
        ("EISNAM", 120),
        ("EREMOTEIO", 121),
        ("EDQUOT", 122),
        ("ENOMEDIUM", 123),
        ("EMEDIUMTYPE", 124),
        ("ECANCELED", 125),
        ("ENOKEY", 126),
        ("EKEYEXPIRED", 127),
        ("EKEYREVOKED", 128),
        ("EKEYREJECTED", 129),
        ("EOWNERDEAD", 130),
        ("ENOTRECOVERABLE", 131),
        ("ERFKILL", 132),
        ("EHWPOISON", 133),
    ]
    static let aliases: [(String, Int32)] = [("EWOULDBLOCK", 11), ("EDEADLOCK", 35), ("ENOTSUP", 95)]
    static let valueByName: [String: Int32] = {
        var d: [String: Int32] = [:]
        for (n, v) in table { d[n] = v }
        for (n, v) in aliases { d[n] = v }
        d["hang"] = Errno.hang.rawValue
        return d
    }()
    static let nameByValue: [Int32: String] = {
        var d: [Int32: String] = [:]
        for (n, v) in table { d[v] = n }
        d[Errno.hang.rawValue] = "hang"
        return d
    }()

    /// Not an errno: the ioctl never returns, because the kernel loops
    /// forever (as `vfio_unmap_unpin` does on 6.12 for some overlapping
    /// mappings at the top of the address space). The model answers it where
    /// the kernel it models would hang; a trace writes `=> hang`. No kernel
    /// returns it (Linux errnos are positive).
    public static let hang = Errno(rawValue: -1)
}
