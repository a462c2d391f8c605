// A Java service for the JVM soak tests: it allocates garbage fast, keeps an LRU cache with a
// bounded live set (~35 MiB), and in "leak" mode also keeps MIB_PER_MIN MiB a minute for ever.
// Every GC_EVERY seconds it asks for a collection, so the live set after GC shows in a short
// test. Built with `javac --release 11 Soak.java` (the tests need only a JRE).
// Usage: java -cp DIR Soak clean|leak MIB_PER_MIN GC_EVERY
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class Soak {
    static final List<byte[]> KEPT = new ArrayList<>();
    static long sink;

    public static void main(String[] args) throws Exception {
        boolean leak = args[0].equals("leak");
        double mibPerMin = Double.parseDouble(args[1]);
        double gcEvery = Double.parseDouble(args[2]);
        final int entries = 140; // 140 x 256 KiB = 35 MiB
        Map<Integer, byte[]> lru = new LinkedHashMap<Integer, byte[]>(256, 0.75f, true) {
            protected boolean removeEldestEntry(Map.Entry<Integer, byte[]> e) {
                return size() > entries;
            }
        };
        long start = System.nanoTime();
        long lastGc = start;
        double leaked = 0;
        int i = 0;
        while (true) {
            for (int k = 0; k < 40; k++) {
                byte[] g = new byte[64 * 1024];
                g[k] = 1;
                sink += g.length;
            }
            byte[] v = new byte[256 * 1024];
            v[0] = 1;
            lru.put(i++ % 1000, v);
            double minutes = (System.nanoTime() - start) / 60e9;
            while (leak && leaked < mibPerMin * minutes) {
                byte[] b = new byte[1 << 20];
                b[0] = 1;
                KEPT.add(b);
                leaked += 1;
            }
            if ((System.nanoTime() - lastGc) / 1e9 >= gcEvery) {
                System.gc();
                lastGc = System.nanoTime();
            }
            Thread.sleep(5);
        }
    }
}
