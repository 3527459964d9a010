// How a page author's TypeScript uses <locker-upload>: checked by `tsc --project crates/xtask/ts`
// in `cargo xtask test`. Each @ts-expect-error is a mistake the types must refuse.
import {
  type LockerError,
  type LockerUpload,
  type LockerUploadResult,
  loadModule,
} from "../../../www/locker-upload.js";

await loadModule();

const found = document.querySelector("locker-upload");
if (found) {
  const refs: string[] = found.value;
  const results: LockerUploadResult[] = found.results;
  const field: string | null = found.name;
  found.addFiles([new File(["hello"], "hello.txt", { type: "text/plain" })]);
  found.addEventListener("locker-complete", (e) => {
    const { ref, sha256, size, deduplicated, namespace, path } = e.detail;
    console.log(ref.startsWith("locker://"), sha256.length, size + 1, !deduplicated, namespace, path);
  });
  found.addEventListener("locker-error", (e) => {
    const file: File = e.detail.file;
    const error = e.detail.error;
    const code = "code" in error ? (error as LockerError).code : "misconfigured";
    console.log(file.name, error.message, code);
  });
  found.addEventListener("change", (e) => console.log(e.target, refs, results, field));
  found.addEventListener("click", (e) => console.log(e.clientX));

  // @ts-expect-error value is read-only: files are added with addFiles
  found.value = [];
  // @ts-expect-error name is read-only: set the attribute
  found.name = "other";
  // @ts-expect-error addFiles takes an array, not a FileList
  found.addFiles(new DataTransfer().files);
  // @ts-expect-error the result has no url (the ref is the file's name)
  found.addEventListener("locker-complete", (e) => e.detail.url);
  // @ts-expect-error the error detail names the file, not a ref
  found.addEventListener("locker-error", (e) => e.detail.ref);
}

const made: LockerUpload = document.createElement("locker-upload");
made.setAttribute("token-url", "/locker-token");

export const widget = (
  <locker-upload
    name="attachments"
    namespace="uploads"
    token-url="/locker-token"
    accept="image/*,.pdf"
    max-size={20_000_000}
    multiple
    required
    data-test="upload"
    aria-describedby="help"
  />
);
// @ts-expect-error attributes are kebab-case, as in HTML
export const misspelt = <locker-upload tokenUrl="/locker-token" />;
